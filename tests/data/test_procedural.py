import json
from collections import Counter

import jsonschema
import pytest

from needle.data.procedural import (
    MIX,
    _check_pool,
    generate_examples,
    load_pool,
    split_heldout,
    write_jsonl,
)


@pytest.fixture(scope="module")
def pool():
    return load_pool()


@pytest.fixture(scope="module")
def examples(pool):
    return generate_examples(2000, seed=1234, pool=pool)


def _kind(ex):
    if not ex["tools"]:
        return "no_tools"
    return {0: "none", 1: "single", 2: "multi"}[len(ex["answers"])]


def test_pool_is_sizeable(pool):
    assert 12 <= len(pool["tools"]) <= 20
    for tool in pool["tools"]:
        assert 5 <= len(tool["templates"]) <= 10, tool["name"]


def test_deterministic_for_seed(pool):
    a = generate_examples(300, seed=7, pool=pool)
    b = generate_examples(300, seed=7, pool=pool)
    c = generate_examples(300, seed=8, pool=pool)
    assert a == b
    assert a != c


def test_answers_validate_against_offered_schemas(examples):
    for ex in examples:
        offered = {t["name"]: t for t in ex["tools"]}
        for ans in ex["answers"]:
            assert ans["name"] in offered
            jsonschema.validate(ans["arguments"], offered[ans["name"]]["parameters"])


def test_mix_ratios(examples):
    counts = Counter(_kind(ex) for ex in examples)
    for kind, weight in MIX:
        assert abs(counts[kind] / len(examples) - weight) < 0.04, (kind, counts)


def test_tool_counts_and_structure(examples):
    for ex in examples:
        assert set(ex) == {"query", "tools", "answers"}
        assert len(ex["tools"]) <= 5
        if ex["tools"]:
            assert len(ex["tools"]) >= 1
        names = [t["name"] for t in ex["tools"]]
        assert len(names) == len(set(names))
        for tool in ex["tools"]:
            assert set(tool) == {"name", "description", "parameters"}
        if len(ex["answers"]) == 2:
            assert ex["answers"][0] != ex["answers"][1]


def test_values_appear_verbatim_in_query(examples):
    for ex in examples:
        for ans in ex["answers"]:
            for value in ans["arguments"].values():
                if isinstance(value, bool):
                    continue  # booleans are implied by phrasing, not copied
                assert str(value) in ex["query"], (value, ex["query"])


def test_json_serialisable_roundtrip(examples, tmp_path):
    assert json.loads(json.dumps(examples)) == examples
    path = tmp_path / "out" / "ex.jsonl"
    write_jsonl(examples[:50], path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == examples[:50]
    assert [p.name for p in path.parent.iterdir()] == ["ex.jsonl"]  # no temp files left


def test_heldout_disjoint_and_same_tools(pool):
    train, held = split_heldout(2000, 200, seed=3, pool=pool)
    assert len(train) == 2000 and len(held) == 200
    train_queries = {ex["query"] for ex in train}
    assert not train_queries & {ex["query"] for ex in held}
    assert len({ex["query"] for ex in held}) == 200
    train_tools = {a["name"] for ex in train for a in ex["answers"]}
    held_tools = {a["name"] for ex in held for a in ex["answers"]}
    assert held_tools <= train_tools
    assert split_heldout(2000, 200, seed=3, pool=pool) == (train, held)


def test_invalid_pool_rejected(pool):
    bad = json.loads(json.dumps(pool))
    bad["tools"][0]["templates"].append("a template missing the required slot")
    with pytest.raises(ValueError):
        _check_pool(bad)


def test_mix_can_oversample_a_kind_and_rejects_nonsense():
    from needle.data.procedural import generate_examples, split_heldout
    only_none = generate_examples(200, seed=5, mix=(("none", 1.0),))
    assert all(ex["answers"] == [] and ex["tools"] for ex in only_none)
    with pytest.raises(ValueError, match="mix"):
        generate_examples(10, seed=5, mix=(("banana", 1.0),))
    # The held-out side never depends on the training mix.
    assert split_heldout(50, 20, seed=2)[1] == split_heldout(50, 20, seed=2, train_mix=(("single", 1.0),))[1]
