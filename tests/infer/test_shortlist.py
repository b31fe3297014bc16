"""Tool shortlisting: tools too long for the encoder are cut to the most relevant that fit."""
import json
import re
from pathlib import Path

import pytest

from needle.data.format import encode_prompt
from needle.data.handwritten import load_handwritten
from needle.data.schema import Tool, parse_tools
from needle.infer.shortlist import MAX_TOOLS, rank_tools, shortlist, tool_words, words
from needle.tokenizer import Tokenizer, default_tokenizer_path

HOME = parse_tools(json.loads((Path(__file__).parents[2] / "examples" / "home_tools.json").read_text()), where="home")
CATALOGUE = [Tool(s.name, s.description, s.parameters) for d in load_handwritten() for s in d.tools]


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.from_file(default_tokenizer_path())


def many_tools() -> list[Tool]:
    """The four home tools among a hundred others: far more than the 1,024-token encoder holds."""
    others = [t for t in CATALOGUE if t.name not in {h.name for h in HOME}][:100]
    return others[:40] + HOME[:2] + others[40:70] + HOME[2:] + others[70:]


def test_words_split_identifiers_and_text():
    assert words("getWeatherForecast") == ["get", "weather", "forecast"]
    assert words("home.set_lights") == ["home", "set", "lights"]
    assert words("HTTPServer v2, Dim the KITCHEN!") == ["http", "server", "v", "2", "dim", "the", "kitchen"]
    lights = next(t for t in HOME if t.name == "set_lights")
    assert {"set", "lights", "room", "brightness"} <= set(tool_words(lights))


def test_ranking_is_lexical():
    tools = many_tools()
    for query, name, rank in [("what's the weather in Oslo", "get_weather", 0),
                              ("send a message to Ana saying hi", "send_message", 0),
                              ("dim the kitchen lights to 10", "set_lights", 1)]:  # toggle_flashlight's text says "dim"
        assert tools[rank_tools(query, tools)[rank]].name == name
    assert tools[rank_tools("dim the kitchen to 10", tools)[-1]].name == "set_lights"  # no word in common: missed


def test_shortlist_fits_keeps_order_and_caps_the_count(tok):
    tools = many_tools()
    with pytest.raises(ValueError, match="offered tools"):
        encode_prompt(tok, "dim the kitchen to 10", tools, 1024)
    kept = shortlist(tok, "dim the kitchen lights to 10", tools, 1024)
    assert 1 <= len(kept) <= MAX_TOOLS and "set_lights" in [t.name for t in kept]
    assert [tools.index(t) for t in kept] == sorted(tools.index(t) for t in kept)  # the offered order
    prompt = encode_prompt(tok, "dim the kitchen lights to 10", kept, 1024)
    assert prompt.query_truncated_from is None
    assert len(shortlist(tok, "dim the kitchen lights", tools, 1024, max_tools=3)) == 3
    huge = Tool("huge", "x " * 3000, {"type": "object", "properties": {}})
    assert shortlist(tok, "anything", [huge, huge], 1024) == []


def test_predictor_answers_from_a_shortlist_and_says_so():
    from needle.infer.predict import Predictor
    tools = many_tools()
    query = "send a message to Ana saying hi"
    pred, = Predictor().predict([(query, tools)])
    kept = [t.name for t in shortlist(Predictor().tok, query, tools, 1024)]
    assert pred.error is None and "send_message" in kept
    assert any(f"104 offered tools do not fit in the encoder; answered with the {len(kept)} most relevant" in w
               and ", ".join(kept) in w for w in pred.warnings)
    assert set(re.findall(r'"name":"([^"]+)"', pred.text)) <= set(kept)  # the grammar holds it to the shortlist
    refused, = Predictor(shortlist_tools=False).predict([(query, tools)])
    assert refused.calls == [] and "offered tools take" in refused.error
    huge = Tool("huge", "x " * 3000, {"type": "object", "properties": {}})
    alone, = Predictor().predict([(query, [huge])])
    assert alone.calls == [] and "1 offered tools take" in alone.error
