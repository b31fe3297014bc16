"""Grammar-constrained decoding: every answer parses and validates against the offered schemas.

Property-based: hypothesis draws random tool schemas (nested objects, arrays, enums, bounds, odd
unicode) and random queries; the tiny model's random weights supply random logits. Whatever the model
prefers, the grammar leaves only valid answers."""
import json

import jsonschema
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from needle.data.format import complete_calls
from needle.data.schema import Tool, parse_tools
from needle.infer.constrained import Grammars, calls_schema, closed
from needle.infer.engine import Engine
from needle.infer.generate import DecodeStats, generate_fast, pad_batch
from needle.infer.predict import Predictor

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
SCALARS = st.one_of(
    st.just({"type": "string"}),
    st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=4, unique=True).map(
        lambda e: {"type": "string", "enum": e}),
    st.tuples(st.integers(-50, 50), st.integers(0, 100)).map(
        lambda t: {"type": "integer", "minimum": t[0], "maximum": t[0] + t[1]}),
    st.just({"type": "integer"}),
    st.tuples(st.floats(-10, 10, allow_nan=False), st.floats(0.5, 50, allow_nan=False)).map(
        lambda t: {"type": "number", "minimum": t[0], "maximum": t[0] + t[1]}),
    st.just({"type": "boolean"}),
)


def _object(values):
    return st.dictionaries(NAMES, values, max_size=4).flatmap(lambda props: st.builds(
        lambda req: {"type": "object", "properties": props, "required": sorted(req)},
        st.sets(st.sampled_from(sorted(props))) if props else st.just(set())))


VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    inner.map(lambda s: {"type": "array", "items": s}), _object(inner)), max_leaves=5)
TOOLS = st.lists(st.builds(lambda n, p: {"name": n, "description": "a tool", "parameters": p}, NAMES, _object(VALUES)),
                 min_size=1, max_size=3, unique_by=lambda t: t["name"])


@pytest.fixture(scope="module")
def constrained(tiny_checkpoint):
    return Predictor(tiny_checkpoint, max_new_tokens=96, batch_size=4, weights="fp32")


def _assert_valid(calls, tools: list[Tool]):
    by_name = {t.name: t for t in tools}
    for c in calls:
        assert c["name"] in by_name
        jsonschema.validate(c["arguments"], by_name[c["name"]].parameters)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(raw_tools=TOOLS, query=st.text(min_size=1, max_size=60))
def test_every_answer_parses_and_validates(constrained, raw_tools, query):
    tools = parse_tools(raw_tools)
    pred = constrained.predict([(query, tools)])[0]
    assume(pred.error is None)  # tools too long for the tiny model's 512-token encoder: refused, tested elsewhere
    assert pred.parsed and pred.valid, (pred.text, pred.warnings)
    _assert_valid(pred.calls, tools)
    if pred.text.endswith("]"):  # finished: the text itself is the compact JSON answer
        assert json.loads(pred.text) == pred.calls


def test_batched_answers_are_valid_too(constrained):
    tools = parse_tools([{"name": "set_timer", "description": "", "parameters": {"type": "object", "properties": {
        "minutes": {"type": "integer", "minimum": 1, "maximum": 90}, "label": {"type": "string", "enum": ["tea", "egg"]}},
        "required": ["minutes"]}}, {"name": "ping", "description": "", "parameters": {"type": "object", "properties": {}}}])
    preds = constrained.predict([(q, tools) for q in ["tea in 4", "boil an egg", "ping", "ok", "x" * 300]])
    for p in preds:
        assert p.parsed and p.valid, (p.text, p.warnings)
        _assert_valid(p.calls, tools)


def test_grammar_off_is_the_unconstrained_model(tiny_checkpoint):
    tools = parse_tools([{"name": "f", "description": "", "parameters": {"type": "object", "properties": {
        "a": {"type": "integer"}}, "required": ["a"]}}])
    free = Predictor(tiny_checkpoint, max_new_tokens=24, weights="fp32", grammar=False).predict([("q", tools)])[0]
    assert not free.parsed  # random weights write no JSON without the grammar


def test_schema_closes_objects_and_always_allows_no_call(tok):
    tools = parse_tools([{"name": "f", "description": "", "parameters": {"type": "object", "properties": {
        "o": {"type": "object", "properties": {"x": {"type": "string"}}}}}}])
    schema = calls_schema(tools)
    assert schema["items"]["properties"]["arguments"]["additionalProperties"] is False
    assert schema["items"]["properties"]["arguments"]["properties"]["o"]["additionalProperties"] is False
    assert closed({"type": "object"}) == {"type": "object"}  # free-form objects stay free
    g = Grammars(tok).for_tools(tools)
    g.consume(tok.encode("[]"))
    assert g.finished
    g = Grammars(tok).for_tools(tools)
    with pytest.raises(RuntimeError, match="grammar rejected"):
        g.consume(tok.encode('[{"name":"g"'))


def test_forced_tokens_complete_names_and_keys(tok):
    tools = parse_tools([{"name": "set_lights", "description": "", "parameters": {"type": "object", "properties": {
        "room": {"type": "string"}}, "required": ["room"]}}])
    g = Grammars(tok).for_tools(tools)
    g.consume(tok.encode('[{"'))
    # up to the key; '":"' may still merge with the value's first characters into one token
    assert tok.decode(g.forced()) == 'name":"set_lights","arguments":{"room'


def test_uncompilable_schemas_are_loosened_with_a_warning(tok):
    tools = parse_tools([
        {"name": "tags", "description": "", "parameters": {"type": "object", "properties": {
            "t": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}}}},
        {"name": "code", "description": "", "parameters": {"type": "object", "properties": {
            "c": {"type": "string", "pattern": "(?=a)b"}}, "required": ["c"]}}])
    g = Grammars(tok).for_tools(tools)
    assert any("'tags'" in w for w in g.warnings) and any("'code'" in w for w in g.warnings)
    g.consume(tok.encode('[{"name":"code","arguments":{"c":"zz"}}]'))  # pattern dropped, keys still enforced
    assert g.finished


def test_complete_calls_keeps_finished_calls_of_a_cut_answer():
    assert complete_calls('[{"name":"a","arguments":{}},{"name":"b","argu') == [{"name": "a", "arguments": {}}]
    assert complete_calls('[{"name":"a","arguments":{"x":"unfinished') == []
    assert complete_calls("") == []


def test_ending_the_list_before_an_unwanted_call(tok):
    tools = parse_tools([{"name": "f", "description": "", "parameters": {"type": "object", "properties": {}}}])
    g = Grammars(tok).for_tools(tools)
    g.consume(tok.encode('[{"name":"'))
    assert g.at_name and tok.decode(g.closed_before_this_call()) == "[]"
    g = Grammars(tok).for_tools(tools)
    g.consume(tok.encode('[{"name":"f","arguments":{}},{"name":"'))
    assert g.at_name and tok.decode(g.closed_before_this_call()) == '[{"name":"f","arguments":{}}]'


@pytest.mark.parametrize("threshold, abstains", [(1.01, True), (0.0, False)])
def test_abstaining_when_the_offered_names_get_too_little_probability(tiny_model, tok, threshold, abstains):
    # a grammar already at a tool name; any probability mass is below 1.01 and none below 0
    tools = parse_tools([{"name": "f", "description": "", "parameters": {"type": "object", "properties": {}}}])
    g = Grammars(tok).for_tools(tools)
    g.consume(tok.encode('[{"name":"'))
    stats = DecodeStats()
    ids, mask = pad_batch([tok.encode("call f")], tok.pad_id)
    out = generate_fast(Engine(tiny_model, "fp32"), ids, mask, torch.tensor([[tok.eos_id, tok.tool_call_id]]), 20,
                        tok.eos_id, tok.pad_id, [g], stats, abstain_below=threshold)[0]
    if abstains:
        assert tok.decode(out[:-1]) == "[]" and out[-1] == tok.eos_id and stats.abstained == 1
    else:
        assert tok.decode(out).startswith('f","arguments":{}}') and stats.abstained == 0
