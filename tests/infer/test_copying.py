"""Grounding at inference: the copy bias (which tokens continue a span of the request), and calls held to
the request (optional arguments it does not contain dropped, calls missing a required value not made)."""
import json
from pathlib import Path

import pytest
import torch

from needle.data.schema import parse_tools
from needle.infer import copying
from needle.infer.copying import (
    continues_span,
    copy_biased_choice,
    fix_meridiem,
    ground_calls,
    open_value,
    repeats,
    used_numbers,
)
from needle.infer.predict import Predictor

HOME_TOOLS = Path(__file__).resolve().parents[2] / "examples" / "home_tools.json"

CALL = b'[{"name":"f","arguments":'


@pytest.mark.parametrize("text, state", [
    (CALL + b'{"city":"O', ("string", b"O")),
    (CALL + b'{"city":', ("start", b"")),
    (CALL + b'{"n":5', ("number", b"5")),
    (CALL + b'{"n":-', ("number", b"-")),
    (CALL + b'{"l":["a",', ("start", b"")),
    (CALL + b'{"l":["a","b', ("string", b"b")),
    (CALL + b'{"o":{"k":"v', ("string", b"v")),
    (CALL + b'{"n":5,"', None),             # a key, not a value
    (CALL + b'{"n":5,"ci', None),
    (b'[{"name":"se', None),                # a tool name: the grammar's business
    (b"[", None),
    (CALL + b'{"s":"say \\"hi', ("string", b'say \\"hi')),
    (CALL + b'{"s":"a"', None),             # the string just closed
])
def test_open_value(text, state):
    assert open_value(text) == state


QUERY = b"what's the weather in Oslo, and the gcd of 40 and 50 or 2.5"


@pytest.mark.parametrize("state, piece, expected", [
    (("string", b""), b"Os", True),
    (("string", b""), b"slo", False),       # not at a word start
    (("string", b"O"), b"slo", True),
    (("string", b"O"), b" boat", False),
    (("string", b"Oslo"), b'"}', True),     # closes at a word end
    (("string", b"Os"), b'"}', False),      # would close mid-word
    (("start", b""), b'"Os', True),
    (("start", b""), b'"', False),          # an empty start says nothing yet
    (("start", b""), b"4", True),
    (("number", b"5"), b"3", False),        # 53 is not in the request
    (("number", b"5"), b"0}", True),
    (("number", b"4"), b",", False),        # 4 is only the start of 40
    (("number", b"2"), b".5}", True),
    (("start", b""), b"true", False),
])
def test_continues_span(state, piece, expected):
    assert continues_span(state, piece, QUERY) is expected


def test_numbers_already_used_get_no_bonus():
    used = used_numbers(CALL + b'{"a":50,"b":[1,2],"c":"7"')
    assert used == {b"50", b"1", b"2"}
    assert not continues_span(("start", b""), b"5", QUERY, used)
    assert continues_span(("start", b""), b"4", QUERY, used)


def test_bonus_picks_a_copying_token_among_the_top_k_only():
    pieces = [b"x", b"slo", b" boat", b"sl"]
    candidates = torch.arange(4)
    logits = torch.tensor([float("-inf"), 8.0, 10.0, 1.0])
    state = ("string", b"O")
    assert copy_biased_choice(logits, candidates, state, QUERY, pieces, bonus=0.0) == 2
    assert copy_biased_choice(logits, candidates, state, QUERY, pieces, bonus=4.0) == 1
    assert copy_biased_choice(logits, candidates, state, QUERY, pieces, bonus=1.0) == 2  # too far behind
    assert copy_biased_choice(logits, candidates, state, QUERY, pieces, bonus=100.0, top_k=1) == 2


@pytest.mark.parametrize("value, query, expected", [
    (b"the e e e e", b"the eagle", True),  # one byte unit: "e " four times over
    (b"Weekly sync # # # # ", b"weekly sync", True),
    (b"2025-10-05t00:00:00.0000", b"on the 5th", True),
    (b"ha ha ha ha ", b"it went ha ha ha ha ha", False),  # the request has the run itself
    (b"1000", b"a thousand", False),  # three times over only
    (b"Paris    ", b"Paris", False),  # blanks are left to grounding's trimming
])
def test_repeats(value, query, expected):
    assert repeats(value, query) is expected


def test_a_choice_that_loops_gives_way_to_the_next_best_that_does_not():
    pieces = [b" e", b"agle", b'"']
    candidates = torch.arange(3)
    logits = torch.tensor([10.0, 5.0, 4.0])
    assert copy_biased_choice(logits, candidates, ("string", b"the e e e"), b"the eagle", pieces, 4.0) == 1
    assert copy_biased_choice(logits, candidates, ("string", b"the e e"), b"the eagle", pieces, 4.0) == 0  # not yet
    logits = torch.tensor([10.0, float("-inf"), float("-inf")])  # nothing else allowed: the loop goes on
    assert copy_biased_choice(logits, candidates, ("string", b"the e e e"), b"the eagle", pieces, 4.0) == 0


GCD = {"name": "gcd", "description": "Greatest common divisor of two integers.",
       "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                      "required": ["a", "b"]}}
SURVEY = {"name": "create_survey", "description": "Create a survey and e-mail it.",
          "parameters": {"type": "object", "properties": {
              "email": {"type": "string", "description": "recipient e-mail"},
              "format": {"type": "string", "enum": ["csv", "xlsx"]}}, "required": ["email"]}}


def test_shipped_model_copies_values_with_the_bias():
    requests = [("gcd of 36 and 48 please", parse_tools([GCD], where="test")),
                ("Create a survey for output format xlsx, email vcartwright@example.com",
                 parse_tools([SURVEY], where="test"))]
    with_bias = Predictor().predict(requests)  # the default
    assert with_bias[0].calls == [{"name": "gcd", "arguments": {"a": 36, "b": 48}}]
    assert with_bias[1].calls[0]["arguments"]["email"] == "vcartwright@example.com"
    # (without the bias, phase 10's weights wrote the first number twice and the first release also garbled the
    # e-mail; phase 12's weights get both right on their own, so no failure is pinned here)


TIMER = {"name": "set_timer", "description": "Start a timer.", "parameters": {"type": "object", "properties": {
    "minutes": {"type": "integer"}, "label": {"type": "string"}, "sound": {"type": "string", "enum": ["bell", "chime"]},
    "when": {"type": "string"}}, "required": ["minutes"]}}


def test_optional_arguments_not_in_the_request_are_dropped():
    tools = parse_tools([TIMER], where="test")
    calls = [{"name": "set_timer", "arguments": {"minutes": 5, "label": "flight", "sound": "chime", "when": "2027-03-12"}}]
    kept, warnings = ground_calls(calls, tools, "set a pasta timer for five minutes on March 12, 2027")
    # an enum value, a number word and a date the request words differently all count as in the request
    assert kept == [{"name": "set_timer", "arguments": {"minutes": 5, "sound": "chime", "when": "2027-03-12"}}]
    assert warnings == ["dropped set_timer's optional argument label=\"flight\": not in the request"]
    same, none = ground_calls(calls, tools, "a flight timer, 5 minutes, on 12 March")
    assert same == calls and none == []


def test_spaces_around_kept_strings_are_trimmed_but_not_around_schema_constants():
    tool = {"name": "set_filter", "parameters": {"type": "object", "properties": {
        "child_name": {"type": "string"}, "sites": {"type": "array", "items": {"type": "string"}},
        "level": {"type": "string", "enum": [" strict ", "off"]}}, "required": ["child_name"]}}
    calls = [{"name": "set_filter", "arguments": {"child_name": "Sam's      ", "sites": [" x.com", "y.org"],
                                                  "level": " strict "}}]
    kept, warnings = ground_calls(calls, parse_tools([tool], where="test"), "block x.com and y.org on Sam's tablet")
    assert kept == [{"name": "set_filter", "arguments": {"child_name": "Sam's", "sites": ["x.com", "y.org"],
                                                         "level": " strict "}}]
    assert warnings == ["trimmed the spaces around set_filter's child_name=\"Sam's      \"",
                        "trimmed the spaces around set_filter's sites=[\" x.com\",\"y.org\"]"]


def test_a_call_whose_required_value_is_not_in_the_request_is_not_made():
    tools = parse_tools([TIMER, GCD], where="test")
    calls = [{"name": "gcd", "arguments": {"a": 4, "b": 5}}, {"name": "set_timer", "arguments": {"minutes": 5}}]
    kept, warnings = ground_calls(calls, tools, "what's the perimeter of a rectangle 5 m long, and a 5 minute timer")
    assert kept == [{"name": "set_timer", "arguments": {"minutes": 5}}]
    assert warnings == ["dropped the call to gcd: its required a=4 not in the request"]
    unknown = [{"name": "other", "arguments": {"x": 1}}]  # not an offered tool: call_problems reports it
    assert ground_calls(unknown, tools, "q") == (unknown, [])


LOG = {"name": "log", "description": "Log.", "parameters": {"type": "object", "properties": {
    "time": {"type": "string"}, "note": {"type": "string"},
    "at": {"type": "object", "properties": {"times": {"type": "array", "items": {"type": "string"}}}},
    "clock12": {"type": "string", "pattern": "^(0?[1-9]|1[0-2]):[0-5][0-9]$"}}}}


def test_clock_times_of_the_other_half_of_the_day_are_set_to_the_request_s():
    query, tools = "log rowing for time 10:30p.m., and remind me at 6:00am", parse_tools([LOG], where="test")
    calls = [{"name": "log", "arguments": {"time": "10:30", "note": "10:30", "at": {"times": ["18:00", "06:00"]}}}]
    fixed, notes = fix_meridiem(calls, tools, query)
    assert fixed == [{"name": "log", "arguments": {"time": "22:30", "note": "22:30",
                                                   "at": {"times": ["06:00", "06:00"]}}}]
    assert notes[0] == 'log\'s arguments.time: "10:30" -> "22:30", the half of the day the request names'
    assert len(notes) == 3 and fix_meridiem(fixed, tools, query) == (fixed, [])
    twelve = [{"name": "log", "arguments": {"clock12": "10:30"}}]  # "22:30" would break its pattern: left alone
    assert fix_meridiem(twelve, tools, query) == (twelve, [])
    odd = [{"name": "x", "arguments": "?"}]
    assert fix_meridiem(odd, tools, query) == (odd, [])


def test_shipped_model_drops_an_invented_optional_argument():
    tools = parse_tools(json.loads(HOME_TOOLS.read_text()), where="test")
    query = "set a timer for 5 minutes and turn off the lights in the bedroom"
    # the tool prior answers this request with set_lights instead (brightness 5): the model's own tool choice here
    pred = Predictor(batch_size=1, tool_prior=0, relevant_above=0).predict([(query, tools)])[0]
    raw = Predictor(batch_size=1, drop_ungrounded=False, tool_prior=0, relevant_above=0).predict([(query, tools)])[0]
    assert raw.calls[0]["arguments"].get("label") == "flight"  # the invention this rule is for
    assert pred.calls[0] == {"name": "set_timer", "arguments": {"minutes": 5}}
    assert any("label" in w for w in pred.warnings)


def test_shipped_model_ends_a_loop_it_would_write_to_the_token_limit(monkeypatch):
    # from the generated validation sample (seed 13, unseen domains): the face's name runs on as
    # "Minargumentsargumentsarguments..." to the 256-token limit unless the loop guard ends it
    case = json.loads(Path(__file__).with_name("loop_case.json").read_text(encoding="utf-8"))
    request = [(case["query"], parse_tools(case["tools"], where="test"))]
    guarded = Predictor().predict(request)[0]
    assert not any("token limit" in w for w in guarded.warnings)
    monkeypatch.setattr(copying, "repeats", lambda value, query: False)
    assert any("token limit" in w for w in Predictor().predict(request)[0].warnings)
