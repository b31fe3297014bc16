"""Optional strings the request names beside a value: the spans considered, and the shipped model filling one in."""
import json
from pathlib import Path

import pytest

from needle.data.schema import parse_tools
from needle.infer.named import (drop_unnamed_args, drop_unnamed_calls, fill_named_strings, fill_named_switches,
                                named_spans, named_switch, swap_phrased_enums, swap_unnamed_enums)
from needle.infer.predict import Predictor


@pytest.mark.parametrize("query, key, expected", [
    ("German for the lang", "lang", ["German"]),  # before the name, through linking words
    ("using Hindi as the lang; max rating is museum", "lang", ["max", "max rating", "max rating is",
                                                                "max rating is museum", "Hindi", "using Hindi"]),
    ("the zone code, then", "zone_code", ["then"]),  # both words of the name; "the" only links
    ("for zone fundraiser", "zone_code", []),  # one of the name's two words is not a run of all of them
    ("nothing named here", "zone", []),
])
def test_named_spans(query, key, expected):
    assert named_spans(query, key) == expected


PARKING = {"name": "get_parking_session", "description": "Get a parking session.", "parameters": {
    "type": "object", "properties": {
        "duration_minutes": {"type": "integer", "minimum": 5, "maximum": 240, "description": "Duration (minutes)."},
        "license_plate": {"type": "string", "description": "Vehicle license plate."},
        "zone": {"type": "string", "description": "Parking zone code."},
        "kind": {"type": "string", "enum": ["short", "long"]},
        "notify_on_expiry": {"type": "boolean"}, "enabled": {"type": "boolean"}},
    "required": ["duration_minutes"]}}


@pytest.mark.parametrize("case_file, rule_off, note, without_rule", [
    # from the generated validation sample (seed 13, unseen tools): the model leaves the zone out ...
    ("named_case.json", {"fill_enums": False}, 'zone="fundraiser": the request names it',
     lambda args: "zone" not in args),
    # ... and adds "position": "top" to the captions it turns on
    ("unnamed_case.json", {"drop_unnamed": False}, 'position="top": the request does not name it',
     lambda args: args.get("position") == "top"),
])
def test_shipped_model_answers_exactly_with_the_rule(case_file, rule_off, note, without_rule):
    case = json.loads((Path(__file__).with_name(case_file)).read_text())
    tools = parse_tools(case["tools"], where="test")
    answer = Predictor().predict([(case["query"], tools)])[0]
    assert answer.calls == case["expected"]
    assert any(note in w for w in answer.warnings)
    plain = Predictor(**rule_off).predict([(case["query"], tools)])[0]
    assert without_rule(plain.calls[0]["arguments"])  # what the rule is for


def test_fill_named_strings_leaves_what_it_must_alone():
    p = Predictor()
    tools = parse_tools([PARKING], where="test")
    enc = p._prompt("zone fundraiser, 22 minutes, kind short", tools)[0].ids
    two = [{"name": "get_parking_session", "arguments": {"duration_minutes": 22}}] * 2
    assert fill_named_strings(p.model, p.tok, enc, two, tools, "zone fundraiser") == (two, [])  # which call?
    given = [{"name": "get_parking_session", "arguments": {"duration_minutes": 22, "zone": "A"}}]
    assert fill_named_strings(p.model, p.tok, enc, given, tools, "zone fundraiser") == (given, [])  # already there
    # an enum argument is left to the named enum rule; a span the model rates below the floor is not used
    one = [{"name": "get_parking_session", "arguments": {"duration_minutes": 22}}]
    calls, notes = fill_named_strings(p.model, p.tok, enc, one, tools, "the kind of zone", min_logprob=0.0)
    assert calls == one and notes == []


@pytest.mark.parametrize("query, arguments, kept", [
    ("park for 22 minutes", {"duration_minutes": 22, "kind": "short"}, {"duration_minutes": 22}),  # not named
    ("a short stay of 22 minutes", {"duration_minutes": 22, "kind": "short"}, None),  # named word for word
    ("SHORT, 22 minutes", {"duration_minutes": 22, "kind": "short"}, None),  # any case
    ("22 minutes, longer please", {"duration_minutes": 22, "kind": "long"}, None),  # the first 4 letters
    ("22 minutes, lon please", {"duration_minutes": 22, "kind": "long"}, {"duration_minutes": 22}),  # 3: no
    ("zone fundraiser", {"duration_minutes": 22, "zone": "A"}, None),  # a free string: grounding's job
    ("22 minutes", {"duration_minutes": 22, "notify_on_expiry": True}, {"duration_minutes": 22}),  # not named
    ("22 minutes, tell me when it expires", {"duration_minutes": 22, "notify_on_expiry": False}, None),  # "expi"
    ("22 minutes", {"duration_minutes": 22, "enabled": True}, None),  # no telling word in its name: kept
])
def test_drop_unnamed_args(query, arguments, kept):
    tools = parse_tools([PARKING], where="test")
    calls, notes = drop_unnamed_args([{"name": "get_parking_session", "arguments": arguments}], tools, query)
    assert calls == [{"name": "get_parking_session", "arguments": kept or arguments}]
    assert len(notes) == (kept is not None)
    required = parse_tools([{**PARKING, "parameters": {**PARKING["parameters"], "required": list(arguments)}}],
                           where="test")  # required arguments are never dropped
    assert drop_unnamed_args([{"name": "get_parking_session", "arguments": arguments}], required, query)[1] == []


NEWS = {"name": "set_news_alerts", "description": "News alerts.", "parameters": {"type": "object", "properties": {
    "enabled": {"type": "boolean"},
    "categories": {"type": "array", "items": {"type": "string", "enum": ["world", "sports", "science"]}},
    "quiet": {"type": "object", "properties": {"start": {"type": "string"}, "vibrate_only": {"type": "boolean"}}}},
    "required": ["enabled"]}}


@pytest.mark.parametrize("query, arguments, kept, dropped", [
    ("turn on breaking news alerts", {"enabled": True, "categories": ["world"]}, {"enabled": True},
     ["categories[]=\"world\""]),
    ("sports and world news on", {"enabled": True, "categories": ["world", "science", "sports"]},
     {"enabled": True, "categories": ["world", "sports"]}, ["categories[]=\"science\""]),
    ("news alerts on", {"enabled": True, "categories": []}, {"enabled": True}, ["categories=[]"]),  # given empty
    ("quiet from 22:00", {"enabled": True, "quiet": {"start": "22:00", "vibrate_only": True}},
     {"enabled": True, "quiet": {"start": "22:00"}}, ["quiet.vibrate_only=true"]),
    ("news alerts off", {"enabled": False, "quiet": {"vibrate_only": True}}, {"enabled": False},
     ["quiet.vibrate_only=true"]),  # left empty: gone with its last value
])
def test_drop_unnamed_args_within_arrays_and_objects(query, arguments, kept, dropped):
    calls, notes = drop_unnamed_args([{"name": "set_news_alerts", "arguments": arguments}],
                                     parse_tools([NEWS], where="test"), query)
    assert calls == [{"name": "set_news_alerts", "arguments": kept}]
    assert notes == [f"dropped set_news_alerts's optional {d}: the request does not name it" for d in dropped]


PURCHASE = {"name": "respond_to_purchase_request", "description": "Answer a child's purchase request.",
            "parameters": {"type": "object", "properties": {
                "decision": {"type": "string", "enum": ["approve", "decline"]},
                "measurement": {"type": "string", "enum": ["heart rate", "stress level", "ECG"]},
                "tone": {"type": "string", "enum": ["kind", "firm"]}},
                "required": ["decision", "measurement"]}}


@pytest.mark.parametrize("query, arguments, changed", [
    ("Decline Mateo's Spotify request", {"decision": "approve"}, {"decision": "decline"}),  # not named: the named one
    ("decline it, and my heart is racing", {"decision": "decline", "measurement": "stress level"},
     {"measurement": "heart rate"}),  # a word of the value is enough
    ("approve or decline it?", {"decision": "approve"}, None),  # named itself
    ("should I approve or decline it", {"decision": "approve", "measurement": "ECG"}, None),  # "ECG" not named,
    # but neither is any other value of its enum
    ("decline it, kindly", {"decision": "decline", "measurement": "ECG", "tone": "firm"}, None),  # optional: left
    # to drop_unnamed_args and the named enum rule
])
def test_swap_unnamed_enums(query, arguments, changed):
    tools = parse_tools([PURCHASE], where="test")
    calls, notes = swap_unnamed_enums([{"name": PURCHASE["name"], "arguments": arguments}], tools, query)
    assert calls == [{"name": PURCHASE["name"], "arguments": {**arguments, **(changed or {})}}]
    assert len(notes) == len(changed or {})
    twice = [{"name": PURCHASE["name"], "arguments": arguments}] * 2  # which call has which value?
    assert swap_unnamed_enums(twice, tools, query) == (twice, [])


VAULT = {"name": "set_vault_auto_lock", "description": "Lock the password vault after a while.",
         "parameters": {"type": "object", "properties": {
             "unlock_with": {"type": "string", "enum": ["master password", "biometrics", "PIN"]},
             "lock_after_minutes": {"type": "integer"},
             "fallback": {"type": "string", "enum": ["master password", "biometrics", "PIN"]},
             "mode": {"type": "string", "enum": ["on", "off", "auto_lock"]}}}}


@pytest.mark.parametrize("query, arguments, changed", [
    ("password manager: lock in 10 and unlock with biometrics", {"unlock_with": "master password"},
     {"unlock_with": "biometrics"}),  # "password" alone is not the value said word for word
    ("unlock with my PIN", {"unlock_with": "biometrics", "mode": "off"}, {"unlock_with": "PIN"}),  # "off": not a
    # value said, but neither is another of 3 letters or more
    ("set auto-lock, unlock with a master password", {"mode": "on", "unlock_with": "biometrics"},
     {"mode": "auto_lock", "unlock_with": "master password"}),  # hyphens and underscores aside
    ("unlock with biometrics", {"unlock_with": "biometrics"}, None),  # said
    ("unlock with PIN or biometrics", {"unlock_with": "master password"}, None),  # two said: which?
    ("unlock with PIN", {"unlock_with": "master password", "fallback": "PIN"}, None),  # another argument's value
])
def test_swap_phrased_enums(query, arguments, changed):
    tools = parse_tools([VAULT], where="test")
    calls, notes = swap_phrased_enums([{"name": VAULT["name"], "arguments": arguments}], tools, query)
    assert calls == [{"name": VAULT["name"], "arguments": {**arguments, **(changed or {})}}]
    assert len(notes) == len(changed or {}) and all("word for word" in n for n in notes)
    twice = [{"name": VAULT["name"], "arguments": arguments}] * 2  # which call has which value?
    assert swap_phrased_enums(twice, tools, query) == (twice, [])


@pytest.mark.parametrize("query, arguments, dropped", [
    ("turn off wrist detection on my watch", {"decision": "approve", "measurement": "ECG"}, True),  # nothing named
    ("turn off wrist detection", {"decision": "approve", "measurement": "ECG", "tone": "kind"}, False),  # an
    # optional value counts: unnamed ones are gone before this rule (drop_unnamed_args)
    ("approve it", {"decision": "approve", "measurement": "ECG"}, False),  # one value named is enough
    ("turn off wrist detection", {"decision": "approve", "note": "wrist"}, False),  # a value beside it
    ("turn off wrist detection", {"tone": "kind"}, False),  # only required enum values count
])
def test_drop_unnamed_calls(query, arguments, dropped):
    tool = {**PURCHASE, "parameters": {**PURCHASE["parameters"], "properties": {
        **PURCHASE["parameters"]["properties"], "note": {"type": "string"}}}}
    tools = parse_tools([tool], where="test")
    calls = [{"name": PURCHASE["name"], "arguments": arguments}]
    kept, notes = drop_unnamed_calls(calls, tools, query)
    assert kept == ([] if dropped else calls)
    assert len(notes) == dropped and (not dropped or "the request names none of its values" in notes[0])


@pytest.mark.parametrize("query, key, value", [
    ("include symbols: yes", "include_symbols", True),
    ("search emails, unread only switched on", "unread_only", True),
    ("reply all disabled", "reply_all", False),
    ("validate only = no", "validateOnly", False),  # camelCase name, "=" links
    ("symbols please", "include_symbols", None),  # not every word of the name
    ("include symbols: yes, include symbols: no", "include_symbols", None),  # both: which?
    ("include symbols in it", "include_symbols", None),  # no value given
])
def test_named_switch(query, key, value):
    assert named_switch(query, key) is value


def test_fill_named_switches():
    tools = parse_tools([PARKING], where="test")
    one = [{"name": "get_parking_session", "arguments": {"duration_minutes": 22}}]
    calls, notes = fill_named_switches(one, tools, "22 minutes, notify on expiry: yes")
    assert calls == [{"name": "get_parking_session", "arguments": {"duration_minutes": 22, "notify_on_expiry": True}}]
    assert notes == ["added get_parking_session's optional argument notify_on_expiry=true: the request gives it"]
    given = [{"name": "get_parking_session", "arguments": {"duration_minutes": 22, "notify_on_expiry": False}}]
    assert fill_named_switches(given, tools, "notify on expiry: yes") == (given, [])  # the model's own value stays
    assert fill_named_switches(one * 2, tools, "notify on expiry: yes") == (one * 2, [])  # which call?
