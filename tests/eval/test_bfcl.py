"""BFCL loading and scoring: counts, BFCL's checker fed its own ground truth, schema conversion, aggregates."""
import pytest

pytest.importorskip("bfcl_eval")

import json

from jsonschema import Draft202012Validator

from needle.data.schema import parse_tools
from needle.eval import bfcl

COUNTS = {"simple_python": 400, "multiple": 200, "parallel": 200, "parallel_multiple": 200, "irrelevance": 240,
          "live_simple": 258, "live_multiple": 1053, "live_parallel": 16, "live_parallel_multiple": 24,
          "live_irrelevance": 884, "live_relevance": 16}
# Ground truth no call can satisfy: a required array whose acceptable values are [] (live_simple_106, 112),
# a required parameter whose only acceptable value is "" i.e. omitted (live_multiple_507), an answer
# parameter missing from the schema (live_multiple_862), a required parameter missing from the answer
# (live_multiple_964).
CONTRADICTORY = {"live_simple_106-63-0", "live_simple_112-68-0", "live_multiple_507-149-4",
                 "live_multiple_862-181-3", "live_multiple_964-207-0"}


@pytest.fixture(scope="module")
def items():
    return bfcl.load_bfcl()


def _pick(values: list, required: bool):
    """First acceptable value; None when the parameter should be left out ("" marks it optional)."""
    real = [v for v in values if v != ""]
    if not real or ("" in values and not required):
        return None
    return (real[0],)


def _fill(spec: dict, answers: dict, nested: bool = True) -> dict:
    # BFCL checks dict values (and lists of dicts) one level deep, key by key; deeper values compare whole.
    out = {}
    for name, values in answers.items():
        picked = _pick(values, name in spec.get("required", []))
        if picked is None:
            continue
        value, sub = picked[0], spec.get("properties", {}).get(name, {})
        if nested and sub.get("type") == "dict" and isinstance(value, dict):
            value = _fill(sub, value, nested=False)
        elif nested and sub.get("items", {}).get("type") == "dict" and isinstance(value, list):
            value = [_fill(sub["items"], d, nested=False) if isinstance(d, dict) else d for d in value]
        out[name] = value
    return out


def ground_truth_calls(item: bfcl.BfclItem) -> list[dict]:
    docs = {f["name"]: f for f in item.functions}
    return [{"name": name, "arguments": _fill(docs[name]["parameters"], params)}
            for call in item.answer for name, params in call.items()]


def test_counts_per_category(items):
    counts = {c: sum(i.category == c for i in items) for c in bfcl.CATEGORIES}
    assert counts == COUNTS and len(items) == 3491


def test_limit_takes_the_first_items_in_file_order():
    first = bfcl.load_bfcl(["multiple", "parallel"], limit=3)
    assert [i.id for i in first] == [f"multiple_{k}" for k in range(3)] + [f"parallel_{k}" for k in range(3)]
    with pytest.raises(ValueError, match="unknown BFCL categories"):
        bfcl.load_bfcl(["simple_java"])


def test_query_joins_system_prompt_then_user(items):
    item = next(i for i in items if i.id == "live_simple_58-27-0")
    assert item.query.startswith("You are an AI chatbot") and item.query.endswith("list movies in Mumbai?")
    assert all(t["description"].endswith(bfcl.PYTHON_HINT) for t in item.tools)
    assert not item.functions[0]["description"].endswith(bfcl.PYTHON_HINT)


def test_ground_truth_scores_itself(items):
    ast_items = [i for i in items if i.category in bfcl.AST_CATEGORIES]
    failed = {i.id: why for i in ast_items for ok, why in [bfcl.score(i, ground_truth_calls(i))] if not ok}
    assert set(failed) == CONTRADICTORY, failed
    assert 1 - len(failed) / len(ast_items) > 0.997  # 2346 / 2351 = 99.79%


def test_to_json_schema_converts_python_types():
    params = {"type": "dict", "required": ["point"], "properties": {
        "point": {"type": "tuple", "items": {"type": "float"}, "description": "(lat, lon)"},
        "data": {"type": "any", "description": "anything"},
        "rows": {"type": "array", "items": {"type": "dict", "required": ["k"], "properties": {
            "k": {"type": "string", "enum": ["a", "b"]}, "v": {"type": "float", "default": 0.5}}}},
        "opts": {"type": "dict", "properties": {"deep": {"type": "boolean", "default": False}}}}}
    schema = bfcl.to_json_schema(params)
    Draft202012Validator.check_schema(schema)
    props = schema["properties"]
    assert schema["type"] == "object" and schema["required"] == ["point"]
    assert props["point"] == {"type": "array", "items": {"type": "number"}, "description": "(lat, lon)"}
    assert props["data"] == {"description": "anything"}
    row = props["rows"]["items"]
    assert row["type"] == "object" and row["required"] == ["k"] and row["properties"]["k"]["enum"] == ["a", "b"]
    assert row["properties"]["v"] == {"type": "number", "default": 0.5}
    assert props["opts"]["properties"]["deep"] == {"type": "boolean", "default": False}
    with pytest.raises(ValueError, match="unknown BFCL type"):
        bfcl.to_json_schema({"type": "complex"})


def test_every_converted_tool_is_valid_json_schema(items):
    distinct = {json.dumps(t["parameters"], sort_keys=True): t["parameters"] for i in items for t in i.tools}
    for schema in distinct.values():
        Draft202012Validator.check_schema(schema)
    for item in items:
        assert [t.name for t in parse_tools(item.tools, item.id)] == [f["name"] for f in item.functions]


def test_irrelevance_and_relevance_rules(items):
    irrelevant = next(i for i in items if i.category == "live_irrelevance")
    relevant = next(i for i in items if i.category == "live_relevance")
    call = [{"name": relevant.tools[0]["name"], "arguments": {}}]
    assert bfcl.score(irrelevant, [])[0] and bfcl.score(irrelevant, None)[0]  # BFCL: undecodable = no call
    assert not bfcl.score(irrelevant, call)[0]
    assert bfcl.score(relevant, call)[0]
    assert not bfcl.score(relevant, [])[0] and not bfcl.score(relevant, None)[0]


def test_ast_failures_are_reported_not_raised(items):
    item = next(i for i in items if i.id == "parallel_0")
    calls = ground_truth_calls(item)
    assert bfcl.score(item, calls) == (True, "")
    assert bfcl.score(item, list(reversed(calls)))[0]  # BFCL ignores the order of parallel calls
    assert bfcl.score(item, None) == (False, "output did not parse as calls")
    assert "wrong_count" in bfcl.score(item, calls[:1])[1]
    weird = [{"name": c["name"], "arguments": {k: {"x": [1]} for k in c["arguments"]}} for c in calls]
    assert not bfcl.score(item, weird)[0]
    assert not bfcl.score(item, [{"name": "spotify.play", "arguments": "[]"}])[0]


def test_aggregates_follow_the_leaderboard():
    table = {"simple_python": (80, 100), "multiple": (60, 100), "parallel": (40, 100), "parallel_multiple": (20, 100),
             "live_simple": (50, 100), "live_multiple": (250, 1000), "live_parallel": (10, 10),
             "live_parallel_multiple": (0, 10), "irrelevance": (90, 100), "live_irrelevance": (70, 100)}
    agg = bfcl.aggregates(table)
    assert agg["non_live_ast"] == pytest.approx(0.5)
    assert agg["live_ast"] == pytest.approx(310 / 1120)
    assert agg["irrelevance"] == pytest.approx(0.8)
    assert agg["overall"] == pytest.approx((0.5 + 310 / 1120 + 0.8) / 3)
    assert agg["categories"]["multiple"] == pytest.approx(0.6)
    partial = bfcl.aggregates({"simple_python": (1, 2)})
    assert partial["non_live_ast"] is None and partial["overall"] is None


def test_contamination_guard(items):
    from needle.data.generator import GenConfig, Generator, chunk_examples

    item = next(i for i in items if i.id == "live_simple_1-1-0")
    fn = item.functions[0]
    leaked = [{"query": "  " + item.query.upper() + "\n", "tools": []},
              {"query": "an unrelated request of ours", "tools": [
                  {"type": "function", "function": {"name": fn["name"], "description": fn["description"] + " "}}]},
              {"query": "an unrelated request of ours", "tools": [{"name": fn["name"], "description": "Ours."}]}]
    problems = bfcl.bfcl_contamination(leaked)
    assert len(problems) == 2 and problems[0].startswith("example 0: query") and "example 1: tool" in problems[1]
    assert bfcl.bfcl_contamination(chunk_examples(Generator(GenConfig()), 0, 2000)) == []
    from needle.data.procedural import generate_examples
    assert bfcl.bfcl_contamination(generate_examples(2000, seed=0)) == []  # the end-to-end script's data
