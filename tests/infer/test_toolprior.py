"""The tool prior: BM25 relevance with the training tools' word weights, name tokens as answers spell them,
the bonus each next name token gets, and the shipped model choosing, and answering, with it (two requests of
the generated validation sample, needle generate-data --heldout 150 --seed 11, one of --heldout 500 --seed 15 and
three of --heldout 500 --seed 13)."""
import json
from pathlib import Path

import pytest
import torch

from needle.data.schema import parse_tools
from needle.infer.predict import Predictor
from needle.infer.toolprior import (FORCED, NameChoice, drop_nothing_new, drop_unrelated, first_tool_retry, idf, name_bonuses,
                                   name_choice, open_name, prior_choice, relevance, used_up_to)

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


def test_used_up_to_is_where_the_last_value_the_finished_calls_copy_ends():
    query = "Set a timer for 5.0 minutes labelled Pasta, then text Anna I'm late"
    first = b'[{"name":"set_timer","arguments":{"minutes":5.0,"label":"pasta"}},{"name":"'
    assert used_up_to(query, first) == query.index("Pasta") + len("Pasta")  # any case; the last value counts
    assert used_up_to(query, b'[{"name":"set_timer","arguments":{"minutes":5}},{"name":"se') == len(
        "Set a timer")  # 5 is not the 5 of "5.0"; with no value found, the name's rarer words count ("timer")
    assert used_up_to("a timer for 5 minutes", b'[{"name":"set_timer","arguments":{"minutes":5.0}},{"name":"') == 13
    assert used_up_to(query, b'[{"name":"set_timer","arguments":{"label":"Soup","on":true}},{"name":"') == len(
        "Set a timer")  # not "set": a common word
    assert used_up_to("Turn off my water reminders and play jazz", b'[{"name":"set_water_reminder","arguments":'
                      b'{"enabled":false}},{"name":"') == len("Turn off my water reminders")
    assert used_up_to(query, b'[{"name":"get_thing","arguments":{"label":"Soup"}},{"name":"') == 0
    assert used_up_to(query, b'[{"name":"') == 0  # no finished call
    assert used_up_to(query, b'[{"name":"get_thing","arguments":{"label":"Pas"}},{"name":"') == 0  # not a word
    assert used_up_to(query, b'[{"name":"get_thing","arguments":{"label":"Pasta"}}}},{"name":"') == 0  # unreadable


def test_later_calls_that_copy_nothing_past_the_earlier_calls_are_dropped_with_a_warning():
    images = {"name": "getImages", "arguments": {"id": "ZASN3"}}
    again = {"name": "getImages", "arguments": {"id": "id"}}
    query = "get images for the event using id: ZASN3, cheers"
    kept, warnings = drop_nothing_new([images, again], query)
    assert kept == [images] and len(warnings) == 1 and "getImages" in warnings[0]
    timer = {"name": "set_timer", "arguments": {"minutes": 45}}
    assert drop_nothing_new([timer, timer], "my meter runs out in 45 minutes")[0] == [timer]
    # a value that stands again later in the request is new: "space heater" is said twice
    a = {"name": "schedule", "arguments": {"device": "space heater", "time": "12:20"}}
    b = {"name": "schedule", "arguments": {"device": "space heater", "time": "19:45"}}
    query = "switch the space heater on at 12:20, after that switch the space heater on at 7:45PM"
    assert drop_nothing_new([a, b], query) == ([a, b], [])
    # calls that copy nothing are kept; so is a first call, and a later one with a value past the earlier ones
    flag = {"name": "get_sleep_summary", "arguments": {"detail": None, "raw": True}}
    weather = [{"name": "get_weather", "arguments": {"city": c}} for c in ("Paris", "London")]
    assert drop_nothing_new([weather[0], flag, weather[1]], "weather in Paris and London") == (
        [weather[0], flag, weather[1]], [])
    assert drop_nothing_new([weather[1]], "weather in Paris and London") == ([weather[1]], [])
    # the known cost: items taken in reverse order lose the later call
    assert drop_nothing_new(weather[::-1], "weather in Paris and London")[0] == [weather[1]]


def test_after_the_first_call_the_rest_of_the_request_decides_without_the_repeat_discount():
    query = "set a timer for 10 minutes and then what's the weather like in Oslo"
    tokens = [[(i + 1, len(t.name))] for i, t in enumerate(HOME)]  # one token per name, ids 1-4 in HOME's order
    choice = NameChoice([t.name.encode() for t in HOME], tokens, relevance(query, HOME), query, HOME)
    timer, weather = [t.name for t in HOME].index("set_timer"), [t.name for t in HOME].index("get_weather")
    rest = relevance(" minutes and then what's the weather like in Oslo", HOME)
    assert choice.relevance[timer] > choice.relevance[weather] and rest[weather] > rest[timer]
    answer = b'[{"name":"set_timer","arguments":{"minutes":10}},{"name":"'
    assert name_bonuses(choice, answer, b"") == {i + 1: rest[i] for i in range(len(HOME))}
    assert name_bonuses(choice, b'[{"name":"', b"") == {i + 1: r for i, r in enumerate(choice.relevance)}
    # nothing the first call used is in the request: the whole request's relevance, halved for the tool called
    answer = b'[{"name":"get_thing","arguments":{"label":"tea"}},{"name":"get_thing","arguments":{}},{"name":"'
    assert name_bonuses(choice, answer, b"") == {i + 1: r for i, r in enumerate(choice.relevance)}
    answer = b'[{"name":"set_lights","arguments":{"room":"hall"}},{"name":"'
    lights = [t.name for t in HOME].index("set_lights")
    halved = [r / 2 if i == lights else r for i, r in enumerate(choice.relevance)]
    assert name_bonuses(choice, answer, b"") == {i + 1: r for i, r in enumerate(halved)}
    # the last value ends the request: nothing left, the same
    end = b'[{"name":"get_weather","arguments":{"city":"Oslo"}},{"name":"'
    assert name_bonuses(choice, end, b"") == {i + 1: r / 2 if i == weather else r
                                              for i, r in enumerate(choice.relevance)}


def test_a_first_tool_gives_way_to_the_tool_its_part_of_the_request_points_to():
    query = "turn the kitchen lights to 10 and set a timer for 5 minutes"
    names = [t.name for t in HOME]
    calls = [{"name": "set_timer", "arguments": {"minutes": 10}}, {"name": "set_timer", "arguments": {"minutes": 5}}]
    head = relevance("turn the kitchen lights to 10", HOME)  # up to the first call's value
    assert head[names.index("set_lights")] > head[names.index("set_timer")] + 5
    assert first_tool_retry(calls, HOME, query) == names.index("set_lights")
    assert first_tool_retry(calls, HOME, query, margin=20) is None  # not that much more relevant
    assert first_tool_retry(calls[:1], HOME, query) == names.index("set_lights")  # also where it is not called again
    assert first_tool_retry([], HOME, query) is None
    lights = {"name": "set_lights", "arguments": {"room": "kitchen"}}
    assert first_tool_retry(calls + [lights], HOME, query) is None  # the better tool is called already
    unknown = [{"name": "set_timer", "arguments": {"minutes": 7}}] * 2  # nothing it copies is in the request
    assert first_tool_retry(unknown, HOME, query) is None
    # the retry: the first name may only be the chosen tool's, later names are free again
    choice = NameChoice([n.encode() for n in names], [[(i + 1, len(n))] for i, n in enumerate(names)],
                        relevance(query, HOME), query, HOME, first=names.index("set_lights"))
    assert name_bonuses(choice, b'[{"name":"', b"") == {names.index("set_lights") + 1: FORCED}
    assert len(name_bonuses(choice, b'[{"name":"set_lights","arguments":{}},{"name":"', b"")) == len(names)


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
    without = Predictor(batch_size=1, tool_prior=0, relevance_floor=None, drop_unnamed=False).predict(requests)[0]
    assert without.calls[0]["name"] == "set_vibration_strength"  # the failure the prior is for
    # (its values are ones the request does not name: without the prior, the rules after decoding drop the call)
    dropped = Predictor(batch_size=1, tool_prior=0, relevance_floor=None).predict(requests)[0]
    assert dropped.calls == [] and any("the request names none of its values" in w for w in dropped.warnings)


def test_shipped_model_answers_a_request_close_to_a_tool_instead_of_abstaining():
    requests, answer = _case("Be a dear and verisure enable autolock with make the entity id 273807")
    assert Predictor(batch_size=1).predict(requests)[0].calls == answer
    # (with relevant_above=0, phase 10's weights abstained here; phase 12's answer it either way)


def test_shipped_model_picks_the_second_tool_from_the_rest_of_the_request():
    requests, answer = _case("Show me the password for Dropbox as well as has mdara@example.org been in a data breach?")
    assert Predictor(batch_size=1).predict(requests)[0].calls == answer
    # with the whole request's relevance, the password tools' words ("password") won the second call too
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(NameChoice, "relevance_after", lambda self, answer: None)
        second = Predictor(batch_size=1).predict(requests)[0].calls[1]
    assert second["name"] == "audit_saved_passwords"


@pytest.mark.parametrize("query", ["assistant, play Radio Paradise", "I want to top up my savings with 300",
                                   "Approve it for Sam and tell them The train tickets"])
def test_shipped_model_decodes_again_with_the_first_clauses_tool(query):
    requests, answer = _case(next(c["query"] for c in CASES if c["query"].startswith(query)))
    pred = Predictor(batch_size=1).predict(requests)[0]
    assert pred.calls == answer
    assert "decoded again with " + answer[0]["name"] in pred.warnings[0]
    # without the retry the first call takes another tool (a later clause's) with the first clause's value
    first = Predictor(batch_size=1, retry_first=False).predict(requests)[0].calls[0]
    assert first["name"] != answer[0]["name"]
