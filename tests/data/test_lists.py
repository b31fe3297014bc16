"""Compressed parallel requests (needle/data/lists.py): one phrasing, several calls of the same tool."""
import random

from needle.data.generator import GenConfig, Generator, chunk_examples
from needle.data.lists import coordinate, listed_call
from needle.data.noise import render
from needle.data.phrasing import Phraser
from needle.data.schema import parse_example
from needle.data.slots import ToolSpec
from needle.data.values import load_pools

PHRASER = Phraser(load_pools(True), None)
TRIP = ToolSpec("plan_trip", "Plan a trip to a city.", {"type": "object", "properties": {
    "city": {"type": "string", "description": "Destination city"},
    "traveller": {"type": "string", "description": "Name of the traveller"}}, "required": ["city", "traveller"]},
    "travel", "handwritten", templates=[("plan a trip to {city} for {traveller}", {})])


def _listed(spec, seed):
    return listed_call(random.Random(seed), PHRASER, spec)


def test_listed_values_are_in_the_request_in_the_order_of_the_calls():
    styles = set()
    for seed in range(120):
        segs, answers = _listed(TRIP, seed)
        query = render(segs)
        assert answers is not None and 2 <= len(answers) <= 3, query
        assert {a["name"] for a in answers} == {"plan_trip"}
        varying = [k for k in answers[0]["arguments"] if len({a["arguments"][k] for a in answers}) > 1]
        assert varying and all(len({a["arguments"][k] for a in answers}) == len(answers) for k in varying)
        for key in varying:  # every listed value is stated, first call's first
            where = [query.find(a["arguments"][key]) for a in answers]
            assert -1 not in where and where == sorted(where), (query, key, answers)
        styles.add("respectively" if "respectively" in query else "two" if len(varying) == 2 else "one")
    assert {"respectively", "one"} <= styles


def test_nothing_to_list_gives_none():
    lamp = ToolSpec("lamp_on", "Turn on the lamp.", {"type": "object", "properties": {"dim": {"type": "boolean"}}},
                    "home", "handwritten", templates=[("turn on the lamp", {})])
    assert all(_listed(lamp, seed)[1] is None for seed in range(10))


def test_coordinate_forms():
    rng = random.Random(0)
    three = {coordinate(rng, ["5", "10", "15"], PHRASER.d) for _ in range(30)}
    assert three == {"5, 10 and 15", "5, 10, and 15", "5, 10 & 15"}
    assert all("5" in s and "10" in s for s in (coordinate(rng, ["5", "10"], PHRASER.d) for _ in range(20)))


def test_generated_parallel_lists_are_valid_and_repeat_one_tool():
    gen = Generator(GenConfig(seed=4, mix={"parallel_list": 1.0}))
    examples = chunk_examples(gen, 0, 150)
    for ex in examples:
        parsed = parse_example(ex, validate=True)
        names = [c.name for c in parsed.answers]
        assert ex["meta"]["type"] == "parallel_list" and names.count(names[0]) >= 2, ex
        first = [c.arguments for c in parsed.answers if c.name == names[0]]
        assert len({repr(sorted(a.items())) for a in first}) == len(first)  # no call asked twice
    assert any(len({c["name"] for c in ex["answers"]}) == 2 for ex in examples)  # sometimes a second tool
