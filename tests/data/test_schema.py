import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from needle.data.schema import Call, DataError, parse_example, parse_tools, read_jsonl, validate_call, write_jsonl

FLAT = {"name": "get_weather", "description": "Weather", "parameters": {
    "city": {"type": "string", "description": "City", "required": True},
    "days": {"type": "int", "description": "Days ahead"}}}


def test_all_tool_forms_normalise_to_one(tools):
    wrapped, plain = parse_tools([tools[1]])[0], parse_tools([tools[1]["function"]])[0]
    assert wrapped == plain and wrapped.name == "set_timer"
    assert parse_tools(json.dumps(tools)) == parse_tools(tools)


def test_flat_needle1_form_becomes_json_schema():
    tool = parse_tools([FLAT])[0]
    assert tool.parameters == {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string", "description": "City"}, "days": {"type": "integer", "description": "Days ahead"}}}


def test_answers_may_be_json_strings_and_openai_tool_calls(tools):
    ex = parse_example({"query": "weather in Oslo", "tools": json.dumps(tools), "answers": json.dumps(
        [{"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}])})
    assert ex.answers == [Call("get_weather", {"city": "Oslo"})]


@pytest.mark.parametrize("answers, field", [
    ([{"name": "get_weather", "arguments": {"city": 5}}], "answers[0].arguments.city"),
    ([{"name": "get_weather", "arguments": {}}], "answers[0].arguments"),
    ([{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "kelvin"}}], "answers[0].arguments.unit"),
    ([{"name": "set_timer", "arguments": {"minutes": 0}}], "answers[0].arguments.minutes"),
    ([{"name": "book_flight", "arguments": {}}], "answers[0].name"),
    ([{"arguments": {}}], "answers[0].name"),
    ('[{"name": ', "answers"),
])
def test_invalid_calls_name_the_field(tools, answers, field):
    with pytest.raises(DataError) as err:
        parse_example({"query": "q", "tools": tools, "answers": answers}, where="f.jsonl:3")
    assert err.value.field == field and str(err.value).startswith("f.jsonl:3: field")


@pytest.mark.parametrize("obj, field", [
    ({"tools": [], "answers": []}, "query"),
    ({"query": "  ", "tools": [], "answers": []}, "query"),
    ({"query": "x" * 30000, "tools": [], "answers": []}, "query"),
    ({"query": "q", "tools": [], }, "answers"),
    ({"query": "q", "tools": [{"name": "a", "parameters": {"type": "object", "properties": {"x": {"type": "str2"}}}}],
      "answers": []}, "tools[0].parameters.properties.x.type"),
    ({"query": "q", "tools": [{"name": "a"}, {"name": "a"}], "answers": []}, "tools[1].name"),
    ({"query": "q", "tools": [{"name": "a", "parameters": {"type": "object", "required": ["y"]}}], "answers": []},
     "tools[0].parameters.required"),
    ({"query": "q", "tools": [{"name": ""}], "answers": []}, "tools[0].name"),
    ({"query": "q", "tools": "{not json", "answers": []}, "tools"),
])
def test_malformed_examples_name_the_field(obj, field):
    with pytest.raises(DataError) as err:
        parse_example(obj)
    assert err.value.field == field


def test_read_jsonl_reports_file_and_line(tmp_path, tools):
    f = tmp_path / "d.jsonl"
    good = {"query": "timer 5", "tools": tools, "answers": [{"name": "set_timer", "arguments": {"minutes": 5}}]}
    f.write_text(json.dumps(good) + "\n\n{oops\n" + json.dumps({**good, "answers": "[]"}) + "\n")
    with pytest.raises(DataError, match=r"d\.jsonl:3: field '<line>': not valid JSON"):
        list(read_jsonl(f))
    skipped = []
    assert len(list(read_jsonl(f, errors="skip", skipped=skipped))) == 2 and len(skipped) == 1


def test_write_jsonl_round_trips_unicode(tmp_path, tools):
    ex = parse_example({"query": "héllo 😀 \"quoted\"\n", "tools": tools, "answers": []})
    write_jsonl([ex], tmp_path / "o.jsonl")
    assert list(read_jsonl(tmp_path / "o.jsonl")) == [ex]


def test_validate_call_accepts_valid(tools):
    validate_call(Call("get_weather", {"city": "Oslo", "unit": "celsius"}), parse_tools(tools))


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                           max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["query", "tools", "answers", "x"]), json_values, max_size=4))
def test_arbitrary_input_raises_only_data_errors(obj):
    try:
        parse_example(obj)
    except DataError:
        pass
