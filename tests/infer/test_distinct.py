"""Distinct values: a span of the request written into two arguments of one call stays in one of them; the other
argument is dropped (optional) or re-chosen by the model's own scores (required)."""
import pytest

from needle.data.format import encode_prompt
from needle.data.schema import call_problems, parse_tools
from needle.infer.cues import value_cue
from needle.infer.distinct import TOP_CHOICES, _margin, distinct_values, repeated_slots, repeated_values
from needle.infer.predict import Predictor
from needle.infer.repair import encode_request, query_spans, span_logprobs, value_prefix

SHORTCUT = {"name": "create_keyboard_shortcut", "description": "Create a global keyboard shortcut that opens an app.",
            "parameters": {"type": "object", "properties": {
                "keys": {"type": "string", "description": "Key combination, e.g. ctrl+alt+t."},
                "app": {"type": "string", "description": "App the shortcut opens."},
                "label": {"type": "string", "description": "Name shown in the shortcut list."},
                "mode": {"type": "string", "enum": ["press", "hold", "double"], "description": "How to trigger."},
                "fallback": {"type": "string", "enum": ["press", "hold", "double"], "description": "If that fails."}},
                "required": ["keys", "app", "mode", "fallback"], "additionalProperties": False}}
TRANSFER = {"name": "transfer_between_accounts", "description": "Move money between the user's own accounts, "
            "including paying down their credit card.", "parameters": {"type": "object", "properties": {
                "from_account": {"type": "string", "enum": ["checking", "savings", "brokerage"],
                                 "description": "Account the money leaves."},
                "to_account": {"type": "string", "enum": ["checking", "savings", "brokerage", "credit card"],
                               "description": "Account the money goes into."},
                "amount": {"type": "number", "minimum": 0.01, "description": "Amount to move."}},
                "required": ["amount", "from_account", "to_account"], "additionalProperties": False}}
VALIDATE = {"name": "validateSession", "description": "Checks the validity of a session ticket.", "parameters": {
    "type": "object", "properties": {
        "languageAsPerTerritory": {"type": "string", "description": "Response field name language."},
        "tgt": {"type": "string", "description": "Ticket Granting Ticket obtained from a previous request"}},
    "required": ["tgt"]}}


def test_repeated_values_groups_the_keys_sharing_a_string():
    args = {"a": "Uber", "b": "Uber", "c": "x", "d": 5, "e": 5, "f": " ", "g": " ", "h": "Uber"}
    assert repeated_values(args) == {"Uber": ["a", "b", "h"]}
    assert repeated_values({"a": "x", "b": "y"}) == {}


def test_repeated_slots_within_a_call_then_across_calls_to_one_tool():
    calls = [{"name": "f", "arguments": {"a": "x", "b": "x", "c": "y"}},
             {"name": "f", "arguments": {"a": "z", "c": "y"}},
             {"name": "g", "arguments": {"c": "y", "a": "x"}}, {"name": "f"}]
    assert repeated_slots(calls) == [("x", [(0, "a"), (0, "b")]), ("y", [(0, "c"), (1, "c")])]


def test_value_cue_names_the_argument_written_beside_the_value():
    keys = ["from_account", "to_account"]
    query = "using credit card as the account the money goes into; and the from account brokerage?"
    assert value_cue(query, "brokerage", keys) == "from_account"  # two of its words against one
    assert value_cue(query, "credit card", keys) is None  # "account" after it: both keys, a tie
    assert value_cue("Quick one: validate session; tgt set to invoice.", "invoice", ["lang", "tgt"]) == "tgt"
    assert value_cue("When I press win+alt+c, launch Slack!", "Slack", ["keys", "app"]) is None
    assert value_cue("open the app Uber", "Lyft", ["app"]) is None  # not in the request
    assert value_cue("send it to Anna, the recipient", "ANNA", ["recipient", "message"]) == "recipient"


def test_margin_prefers_the_value_where_no_alternative_fits():
    inf = float("inf")
    assert _margin(-1.0, -3.0) == 2.0 and _margin(-1.0, -inf) == inf and _margin(-inf, -inf) == -inf


def test_one_argument_keeps_the_value_the_others_are_dropped_or_rechosen(tiny_model, tok):
    offered = parse_tools([SHORTCUT], where="test")
    query = "Add keyboard shortcut alt+space for opening Uber, hold it"
    enc = encode_prompt(tok, query, offered, tiny_model.cfg.max_encoder_len).ids
    calls = [{"name": "create_keyboard_shortcut",
              "arguments": {"keys": "Uber", "app": "Uber", "label": "Uber", "mode": "hold", "fallback": "hold"}}]
    fixed, notes = distinct_values(tiny_model, tok, enc, calls, offered, query)
    args = fixed[0]["arguments"]
    assert calls[0]["arguments"]["keys"] == "Uber"  # the input is not changed in place
    assert list(args.values()).count("Uber") == 1 and list(args.values()).count("hold") == 1
    kept = [k for k in ("keys", "app", "label") if args.get(k) == "Uber"]
    assert len(kept) == 1
    for k in {"keys", "app"} - set(kept):  # required: another span of the request
        assert args[k] in query_spans(query) and args[k] not in ("Uber", "hold")
    assert ("label" in args) == (kept == ["label"])  # optional: dropped unless it keeps the value
    assert {args["mode"], args["fallback"]} - {"hold"} <= {"press", "double"}  # enums choose among their values
    assert len(notes) == 3 and all("repeated" in n for n in notes)

    # no argument is named beside "Uber": the kept one prefers the value most over its own best alternative
    memory, spans = encode_request(tiny_model, enc), query_spans(query)
    options = [s for s in spans if s not in ("Uber", "hold")]
    margins = {}
    for k in ("keys", "app", "label"):
        scores = span_logprobs(tiny_model, tok, memory, value_prefix(calls, 0, k) + '"', ["Uber"] + options,
                               top=TOP_CHOICES)
        margins[k] = scores[0] - max(scores[1:])
    assert kept == [max(margins, key=margins.get)]


def test_calls_to_one_tool_do_not_share_a_value_said_once(tiny_model, tok):
    offered = parse_tools([SHORTCUT], where="test")
    query = "shortcuts: ctrl+u opens Uber and ctrl+s opens Spotify"
    enc = encode_prompt(tok, query, offered, tiny_model.cfg.max_encoder_len).ids
    calls = [{"name": "create_keyboard_shortcut", "arguments": {"keys": k, "app": "Uber", "mode": "press",
                                                                "fallback": "hold"}} for k in ("ctrl+u", "ctrl+s")]
    fixed, notes = distinct_values(tiny_model, tok, enc, calls, offered, query)
    apps = [c["arguments"]["app"] for c in fixed]
    assert apps.count("Uber") == 1 and all(a in query_spans(query) for a in apps)
    assert "ctrl+u" not in apps and "ctrl+s" not in apps  # not a value its own call already holds
    assert [c["arguments"]["keys"] for c in fixed] == ["ctrl+u", "ctrl+s"]  # enums the request does not say: kept
    assert all(c["arguments"]["mode"] == "press" and c["arguments"]["fallback"] == "hold" for c in fixed)
    assert len(notes) == 1 and "app repeated \"Uber\" from create_keyboard_shortcut's app" in notes[0]


@pytest.mark.parametrize("query, value", [("open Uber, Uber please", "Uber"), ("open the car app", "Uber")])
def test_values_said_twice_or_not_at_all_are_left_alone(tiny_model, tok, query, value):
    offered = parse_tools([SHORTCUT], where="test")
    enc = encode_prompt(tok, query, offered, tiny_model.cfg.max_encoder_len).ids
    calls = [{"name": "create_keyboard_shortcut",
              "arguments": {"keys": value, "app": value, "mode": "press", "fallback": "hold"}}]
    assert distinct_values(tiny_model, tok, enc, calls, offered, query) == (calls, [])


BEDTIME = {"name": "set_child_bedtime", "description": "Schedule downtime for a child.", "parameters": {
    "type": "object", "properties": {
        "child_name": {"type": "string"},
        "start_time": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
        "end_time": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}},
    "required": ["child_name", "start_time", "end_time"]}}


@pytest.mark.parametrize("query, fits", [("bedtime for Ava from 22:00 to 07:30 with HBO Max off", True),
                                          ("bedtime for Ava when downtime begins 22:00, HBO Max off", False)])
def test_a_rechosen_value_fits_its_arguments_schema(tiny_model, tok, query, fits):
    """A span of the request that the argument's pattern refuses is never the replacement (HBO for a time)."""
    offered = parse_tools([BEDTIME], where="test")
    enc = encode_prompt(tok, query, offered, tiny_model.cfg.max_encoder_len).ids
    calls = [{"name": "set_child_bedtime", "arguments": {"child_name": "Ava", "start_time": "22:00",
                                                         "end_time": "22:00"}}]
    fixed, notes = distinct_values(tiny_model, tok, enc, calls, offered, query)
    args = fixed[0]["arguments"]
    assert not call_problems(fixed, offered)
    assert sorted([args["start_time"], args["end_time"]]) == (["07:30", "22:00"] if fits else ["22:00", "22:00"])
    assert len(notes) == fits


def test_unknown_tools_and_odd_arguments_pass_through(tiny_model, tok):
    offered = parse_tools([SHORTCUT], where="test")
    query = "open Uber"
    enc = encode_prompt(tok, query, offered, tiny_model.cfg.max_encoder_len).ids
    calls = [{"name": "nope", "arguments": {"a": "Uber", "b": "Uber"}}, {"name": "create_keyboard_shortcut"}]
    assert distinct_values(tiny_model, tok, enc, calls, offered, query) == (calls, [])


def test_shipped_model_gives_each_account_its_own_value():
    predictor = Predictor(batch_size=1)  # the default checkpoint and decoding
    transfer = ("Would you transfer between accounts: with amount 300, using credit card as the account the money "
                "goes into; and the from account brokerage?", parse_tools([TRANSFER], where="test"))
    validate = ("Quick one: validate session; tgt set to invoice.", parse_tools([VALIDATE], where="test"))
    moved, checked = predictor.predict([transfer, validate])
    assert moved.calls == [{"name": "transfer_between_accounts",
                            "arguments": {"from_account": "brokerage", "to_account": "credit card", "amount": 300}}]
    assert any("to_account repeated" in w for w in moved.warnings)  # the model itself wrote "brokerage" twice
    assert checked.calls == [{"name": "validateSession", "arguments": {"tgt": "invoice"}}]
    assert any("dropped validateSession's optional languageAsPerTerritory" in w for w in checked.warnings)
    plain = Predictor(batch_size=1, distinct=False).predict([transfer])[0]
    assert plain.calls[0]["arguments"]["to_account"] == "brokerage"
