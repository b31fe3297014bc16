"""Respelled examples: names and keys renamed consistently in tools and answers, still valid, deterministic."""
import random

import pytest

from needle.data.generator import GenConfig, Generator, chunk_examples
from needle.data.respell import NAME_OK, respell, respell_name, spell, words
from needle.data.schema import parse_example


def test_words_split_every_convention():
    for name in ("set_lights", "setLights", "SetLights", "set-lights", "SET_LIGHTS"):
        assert words(name) == ["set", "lights"]
    assert words("getHTTPStatus2") == ["get", "http", "status", "2"]
    assert spell(["set", "lights"], "dotted") == "lights.set"
    assert spell(["set", "lights"], "camel") == "setLights"


def test_respelled_names_are_valid_tool_names():
    rng = random.Random(0)
    names = {respell_name(rng, "set_lights") for _ in range(300)}
    assert all(NAME_OK.match(n) for n in names)
    assert len(names) > 30 and "setLights" in names and "lights.set" in names


def test_respell_renames_tools_keys_and_answers_together():
    ex = {"query": "dim the kitchen to 10", "meta": {"type": "single"},
          "tools": [{"name": "set_lights", "description": "Set lights.",
                     "parameters": {"type": "object", "properties": {"room_name": {"type": "string"},
                                                                      "brightness": {"type": "integer"}},
                                    "required": ["room_name"]}},
                    {"name": "get_weather", "description": "Weather.", "parameters": {"type": "object"}}],
          "answers": [{"name": "set_lights", "arguments": {"room_name": "kitchen", "brightness": 10}}]}
    for seed in range(40):
        out = respell(random.Random(seed), ex, keys_p=1.0)
        tool = out["tools"][0]
        assert out["answers"][0]["name"] == tool["name"] != out["tools"][1]["name"]
        props = list(tool["parameters"]["properties"])
        assert list(out["answers"][0]["arguments"]) == props
        assert list(out["answers"][0]["arguments"].values()) == ["kitchen", 10]
        assert tool["parameters"]["required"] == props[:1]
        parse_example(out, validate=True)
    assert ex["tools"][0]["name"] == "set_lights"  # the input is not modified


@pytest.mark.parametrize("p", [0.0, 0.6])
def test_generator_respell_share_and_validity(p):
    gen = Generator(GenConfig(respell_p=p))
    examples = chunk_examples(gen, 0, 400)
    for ex in examples:
        parse_example(ex, validate=True)
    share = sum(bool(ex["meta"].get("respelled")) for ex in examples) / len(examples)
    with_tools = sum(bool(ex["tools"]) for ex in examples) / len(examples)
    assert share == 0.0 if p == 0 else abs(share - p * with_tools) < 0.1
    assert chunk_examples(gen, 0, 400) == examples  # still a pure function of (config, chunk)


def test_respell_p_is_checked():
    with pytest.raises(ValueError, match="respell_p"):
        GenConfig(respell_p=1.5)
