"""The tool prior: BM25 relevance with the training tools' word weights, name tokens as answers spell them,
the bonus each next name token gets, and the shipped model choosing, and answering, with it (two requests of
the generated validation sample, needle generate-data --heldout 150 --seed 11)."""
import json
from pathlib import Path

import pytest
import torch

from needle.data.schema import parse_tools
from needle.infer.predict import Predictor
from needle.infer.toolprior import (NameChoice, drop_unrelated, idf, name_bonuses, name_choice, open_name, prior_choice,
                                   relevance)

HOME = parse_tools(json.loads((Path(__file__).resolve().parents[2] / "examples" / "home_tools.json").read_text()),
                   where="test")
CASES = json.loads(Path(__file__).with_name("tool_prior_cases.json").read_text())


def test_idf_weighs_rare_words_above_common_ones():
    assert idf("the") < idf("set") < idf("thermostat") <= idf("a-word-no-tool-has")


def test_relevance_points_at_the_tool_the_request_names():
    names = [t.name for t in HOME]
    scores = relevance("set a timer for 10 minutes", HOME)
    assert names[scores.index(max(scores))] == "set_timer"
    pair = [t for t in HOME if t.name in ("set_timer", "get_weather")]
    two = relevance("what's the weather in Oslo", pair)  # two tools: BM25's own IDF would give every word <= 0
    assert two[[t.name for t in pair].index("get_weather")] > 5 > two[[t.name for t in pair].index("set_timer")]
    assert relevance("", HOME) == [0.0] * len(HOME)
    assert relevance("tell me a joke", HOME) == pytest.approx([0.0] * len(HOME), abs=1.0)


def test_calls_unrelated_to_the_request_that_copy_nothing_from_it_are_dropped_with_a_warning():
    lights = {"name": "set_lights", "arguments": {"room": "kitchen", "brightness": 10}}
    timer = {"name": "set_timer", "arguments": {"minutes": 5}}
    kept, warnings = drop_unrelated([lights, timer], HOME, "dim the kitchen to 10", 4.0)
    assert relevance("dim the kitchen to 10", HOME)[0] < 1  # set_lights shares no word with it, but copies two
    assert kept == [lights]
    assert len(warnings) == 1 and "set_timer" in warnings[0] and "at most 4" in warnings[0]
    assert drop_unrelated([timer], HOME, "set a timer please", 4.0) == ([timer], [])  # relevant: kept
    assert drop_unrelated([timer], HOME, "set a timer please", 1e9)[0] == []  # the floor is what decides
    assert drop_unrelated([lights], HOME, "set a timer please", 1e9)[0] == []
    assert drop_unrelated([lights], HOME, "5 !!", 1e9) == ([lights], [])  # no words to compare: nothing dropped
    assert drop_unrelated([], HOME, "tell me a joke", 4.0) == ([], [])


def test_name_tokens_spell_each_name_as_answers_do(tok):
    from needle.infer.constrained import Grammars
    pieces = Grammars(tok).pieces
    choice = name_choice(tok, pieces, "dim the kitchen", HOME)
    opening = len(tok.encode('[{"name":"'))
    for name, toks in zip(choice.names, choice.tokens):
        assert b"".join(pieces[t] for t, _ in toks) == name
        assert [t for t, _ in toks] == tok.encode('[{"name":"' + name.decode() + '","arguments":{')[
            opening:opening + len(toks)]


def test_odd_names_are_spelled_byte_for_byte(tok):
    from needle.infer.constrained import Grammars
    pieces = Grammars(tok).pieces
    odd = parse_tools([{"name": n, "description": "d", "parameters": {"type": "object", "properties": {}}}
                       for n in ("x", "météo_ville", "日本語ツール")], where="test")
    choice = name_choice(tok, pieces, "météo à Paris", odd)
    for name, toks in zip(choice.names, choice.tokens):
        assert b"".join(pieces[t] for t, _ in toks) == name
    assert choice.relevance.index(max(choice.relevance)) == 1
    assert name_choice(tok, pieces, "anything", []) is None
    pred = Predictor(batch_size=1).predict([("météo à Paris", odd)])[0]
    assert pred.valid and pred.error is None


def test_open_name():
    assert open_name(b'[{"name":"') == b""
    assert open_name(b'[{"name":"set_li') == b"set_li"
    assert open_name(b'[{"name":"set_lights","arguments":{') is None
    assert open_name(b'[{"name":"a","arguments":{}},{"name":"get') == b"get"
    assert open_name(b"[") is None


SHARED = NameChoice([b"set_lights", b"set_timer"], [[(1, 3), (2, 7)], [(1, 3), (3, 6)]], [4.0, 9.0])


def test_a_shared_first_token_carries_the_best_relevance_then_each_name_its_own():
    assert name_bonuses(SHARED, b'[{"name":"', b"") == {1: 9.0}
    assert name_bonuses(SHARED, b'[{"name":"set', b"set") == {2: 4.0, 3: 9.0}
    assert name_bonuses(SHARED, b'[{"name":"sex', b"sex") == {}


def test_a_tool_already_called_counts_half():
    answer = b'[{"name":"set_timer","arguments":{"minutes":5}},{"name":"set'
    assert name_bonuses(SHARED, answer, b"set") == {2: 4.0, 3: 4.5}


def test_prior_choice_overturns_a_small_margin_only():
    cols = torch.tensor([2, 3, 7])
    logits = torch.tensor([1.0, 0.0, float("-inf")])
    assert prior_choice(logits, cols, {3: 0.4}, 2.0) == 2  # 0 + 0.8 < 1
    assert prior_choice(logits, cols, {3: 0.6}, 2.0) == 3  # 0 + 1.2 > 1
    assert prior_choice(logits, cols, {7: 50.0, 9: 50.0}, 2.0) == 2  # not allowed, or not a column: no effect


def _case(query: str):
    case = next(c for c in CASES if c["query"] == query)
    return [(case["query"], parse_tools(case["tools"], where="test"))], case["answer"]


def test_shipped_model_picks_the_tool_the_request_points_to():
    # the case file's "Turn the ringer back on." was the first release's failure; phase 10 answers it [] either way
    [(_, tools)], _ = _case("Turn the ringer back on.")
    requests = [("Put the ringer on vibrate.", tools)]
    assert Predictor(batch_size=1).predict(requests)[0].calls == [
        {"name": "set_ringer_mode", "arguments": {"mode": "vibrate"}}]
    without = Predictor(batch_size=1, tool_prior=0, relevance_floor=None).predict(requests)[0].calls
    assert without[0]["name"] == "set_vibration_strength"  # the failure the prior is for


def test_shipped_model_answers_a_request_close_to_a_tool_instead_of_abstaining():
    requests, answer = _case("Be a dear and verisure enable autolock with make the entity id 273807")
    assert Predictor(batch_size=1).predict(requests)[0].calls == answer
    # (with relevant_above=0, phase 10's weights abstained here; phase 12's answer it either way)
