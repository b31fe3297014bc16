"""Numbers given by position (needle/data/positional.py): "the gcd of 36 and 48" for num1 and num2."""
import random
import re

from needle.data.generator import HELDOUT_MIX, GenConfig, Generator, chunk_examples
from needle.data.noise import render
from needle.data.phrasing import Phraser
from needle.data.positional import positional_call, positional_names
from needle.data.schema import parse_example
from needle.data.slots import ToolSpec
from needle.data.values import load_pools

PHRASER = Phraser(load_pools(True), None)
GCD = ToolSpec("gcd", "Compute the greatest common divisor of numbers.", {"type": "object", "properties": {
    "num1": {"type": "integer", "description": "First number"}, "num2": {"type": "integer", "description": "Second"},
    "num3": {"type": "integer", "description": "Third, optional"}, "label": {"type": "string"},
    "mode": {"type": "string", "enum": ["fast", "exact"]}}, "required": ["num1", "num2"]}, "maths", "invented")


def test_positional_names_follow_the_offered_order():
    assert positional_names(GCD, ["num1", "label", "num2", "mode", "num3"]) == ["num1", "num2", "num3"]
    assert positional_names(GCD, ["num3", "num2", "num1"]) == ["num3", "num2", "num1"]
    one = ToolSpec("t", "d", {"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string"}}},
                   "x", "invented")
    assert positional_names(one, ["n", "s"]) == []  # one number: nothing to order
    late = ToolSpec("t", "d", {"type": "object", "properties": {k: {"type": "number"} for k in "abcd"},
                               "required": ["d"]}, "x", "invented")
    assert positional_names(late, list("abcd")) == []  # a required number after the third cannot be listed
    assert positional_names(late, list("dabc")) == list("dabc")


def test_listed_numbers_are_the_first_numeric_arguments_in_the_request_in_order():
    lengths = set()
    for seed in range(150):
        rng = random.Random(seed)
        order = rng.sample(list(GCD.props), len(GCD.props))
        PHRASER.trace = trace = []
        try:
            segs, args = positional_call(rng, PHRASER, GCD, order)
        finally:
            PHRASER.trace = None
        trace = trace[-len(args):]  # the last draw of the listed numbers, then the named arguments
        numbers = positional_names(GCD, order)
        listed = [name for name, _, _, seg in trace if not any(seg is s for s in segs)]  # not named in a mention
        assert listed == numbers[:len(listed)] and 2 <= len(listed) <= 3 and {"num1", "num2"} <= set(listed)
        text = segs[1][0]  # the bare list, a value segment (noise never touches it)
        where = [m.start() if (m := re.search(rf"(?<![\w.]){re.escape(seg[0])}(?![\w.])", text)) else -1
                 for name, _, _, seg in trace if name in listed]
        assert segs[1][1] and -1 not in where and where == sorted(where), (render(segs), trace)
        assert list(args) == [k for k in order if k in args]  # the answer in the offered order
        lengths.add(len(listed))
    assert lengths == {2, 3}


def test_generated_positional_examples_are_valid_and_not_in_the_heldout_mix():
    gen = Generator(GenConfig(seed=4, mix={"positional": 1.0}))
    examples = chunk_examples(gen, 0, 60)
    for ex in examples:
        assert ex["meta"]["type"] == "positional"
        parse_example(ex, "test")
        tool = next(t for t in ex["tools"] if t["name"] == ex["answers"][0]["name"])
        order = list(tool["parameters"]["properties"])
        assert list(ex["answers"][0]["arguments"]) == [k for k in order if k in ex["answers"][0]["arguments"]]
    assert len({ex["answers"][0]["name"] for ex in examples}) > 20
    assert "positional" not in HELDOUT_MIX and "positional" in GenConfig().mix
