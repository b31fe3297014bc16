import json
import random

import pytest

from needle.data.format import (ROLE_WEIGHTS, ToolsTooLong, answer_json, answer_pieces, encode_answer,
                                encode_example, encode_prompt, parse_answer, shuffle_example)
from needle.data.schema import Call, parse_example, parse_tools


def _example(tools, answers, query="what's the weather in Oslo and set a 5 minute timer"):
    return parse_example({"query": query, "tools": tools, "answers": answers})


ANSWERS = [{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}},
           {"name": "set_timer", "arguments": {"minutes": 5}}]


def test_answer_json_is_compact_json():
    calls = [Call("a", {"x": {"y": [1, "é\"q"]}, "z": None}), Call("b", {})]
    assert answer_json(calls) == json.dumps([c.to_dict() for c in calls], separators=(",", ":"), ensure_ascii=False)
    assert answer_json([]) == "[]"


def test_roles_mark_names_keys_and_values():
    pieces = dict((t, r) for t, r in answer_pieces([Call("set_timer", {"minutes": 5, "label": "tea"})]))
    assert ROLE_WEIGHTS[pieces["set_timer"]] == 2.0
    assert ROLE_WEIGHTS[pieces["minutes"]] == 1.5
    assert ROLE_WEIGHTS[pieces["5"]] == 4.0 and ROLE_WEIGHTS[pieces["tea"]] == 4.0


def test_encoded_example_layout(tok, tools):
    e = encode_example(tok, _example(tools, ANSWERS), 1024, 512)
    assert e.dec_in[:2] == [tok.eos_id, tok.tool_call_id]
    assert e.target[0] == tok.tool_call_id and e.target[-1] == tok.eos_id
    assert e.dec_in[1:] == e.target[:-1] and len(e.weights) == len(e.target)
    assert tok.decode(e.target[1:-1]) == answer_json(_example(tools, ANSWERS).answers)
    assert e.enc_ids.count(tok.tools_id) == 1
    query = tok.decode(e.enc_ids[:e.enc_ids.index(tok.tools_id)])
    assert query.startswith("what's the weather")
    assert max(e.weights) == 4.0 and min(e.weights) == 1.0


def test_every_occurrence_is_weighted(tok):
    ids, w = encode_answer(tok, [Call("set_timer", {"minutes": 5}), Call("set_timer", {"minutes": 7})])
    name_tokens = [i for i, x in zip(ids, w) if x == 2.0]
    assert len(name_tokens) > 0 and len(name_tokens) % 2 == 0


def test_shuffle_keeps_meaning_and_aligns_argument_order(tools):
    ex = _example(tools, ANSWERS)
    seen_orders = set()
    for seed in range(20):
        s = shuffle_example(ex, random.Random(seed))
        assert sorted(t.name for t in s.tools) == sorted(t.name for t in ex.tools)
        assert [c.arguments for c in s.answers] == [c.arguments for c in ex.answers]  # dict equality
        weather = next(t for t in s.tools if t.name == "get_weather")
        assert list(s.answers[0].arguments) == list(weather.parameters["properties"])
        seen_orders.add((tuple(t.name for t in s.tools), tuple(weather.parameters["properties"])))
    assert len(seen_orders) == 4


def test_long_query_is_cut_but_tools_never_dropped(tok, tools):
    parsed = parse_tools(tools)
    p = encode_prompt(tok, "please " * 2000, parsed, 256)
    assert len(p.ids) == 256 and p.query_truncated_from and tok.tools_id in p.ids
    many = parse_tools([{"name": f"tool_{i}", "description": "does a thing " * 10} for i in range(40)])
    with pytest.raises(ToolsTooLong, match="40 offered tools"):
        encode_prompt(tok, "hi", many, 1024)


@pytest.mark.parametrize("text, expected", [
    ("[]", []), ('[{"name":"a","arguments":{"x":1}}]', [{"name": "a", "arguments": {"x": 1}}]),
    ('[{"name":"a"}]', [{"name": "a", "arguments": {}}]),
    ('[{"name":"a","arguments":{"x":1}', None), ('{"name":"a"}', None), ("[1]", None), ("", None)])
def test_parse_answer(text, expected):
    assert parse_answer(text) == expected
