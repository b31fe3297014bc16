"""Slot cues: numbers of the request tied to the argument the request names beside them, the sign of a
negative number kept, and the shipped model held to them while decoding; optional enum arguments whose value
the request names, filled in; string values moved to the argument the request names beside them."""
import pytest

from needle.data.schema import parse_tools
from needle.infer.copying import continues_span
from needle.infer.cues import (before_cue, fill_cued_numbers, fill_named_enums, number_cues, numbers_for_slot,
                               positional_keys, query_numbers, standalone_numbers, swap_cued)
from needle.infer.predict import Predictor


@pytest.mark.parametrize("query, keys, cues", [
    ("a triangle with a base of 10 units and height of 5 units", ["base", "height", "unit"],
     {"base": {b"10"}, "height": {b"5"}}),                  # before beats after: 10 is the base's, not the unit's
    ("triangle area, height 8 and base 3", ["base", "height"], {"height": {b"8"}, "base": {b"3"}}),
    ("roots where a = 3, b = -11, and c=-4.", ["a", "b", "c"], {"a": {b"3"}, "b": {b"-11"}, "c": {b"-4"}}),
    ("set a timer for 5 minutes and 30 seconds", ["minutes", "seconds"],
     {"minutes": {b"5"}, "seconds": {b"30"}}),              # after the number, and "and" does not link
    ("final velocity given an initial velocity of 10 m/s", ["initial_velocity", "final_velocity"],
     {"initial_velocity": {b"10"}}),                        # more of the key's words beat fewer
    ("the gcd of 40 and 50", ["num1", "num2"], {}),          # nothing named: no cue
    ("dim the kitchen to 10", ["room", "brightness"], {}),
    ("heights 4 and 6", ["height"], {"height": {b"4"}}),    # plural; 6 is too far
    ("x = 2 y", ["x", "y"], {"x": {b"2"}}),                 # named before and after: before wins
])
def test_number_cues(query, keys, cues):
    assert number_cues(query, keys) == cues


def test_query_numbers_keep_a_sign_but_not_a_hyphen():
    assert query_numbers(b"COVID-19 between 1-3 March, x=-2.5, y -7 and .5") == [
        b"19", b"1", b"3", b"-2.5", b"-7", b".5"]
    assert continues_span(("start", b""), b"-", b"b = -11")
    assert not continues_span(("start", b""), b"1", b"b = -11")  # 11 without its sign is not the request's


CALL = b'[{"name":"area","arguments":'
CUES = {"area": {"base": {b"10"}, "height": {b"5"}}}
QUERY = b"base of 10 and height of 5, or 7"


@pytest.mark.parametrize("text, expected", [
    (CALL + b'{"base":', ({b"10"}, True)),
    (CALL + b'{"height":', ({b"5"}, True)),
    (CALL + b'{"base":1', ({b"10"}, True)),
    (CALL + b'{"side":', ({b"7"}, False)),          # not named: the numbers named for others are left out
    (b'[{"name":"other","arguments":{"base":', (None, False)),
    (CALL + b'{"l":[', (None, False)),              # inside a list: no key to go by
])
def test_numbers_for_slot(text, expected):
    assert numbers_for_slot(text, QUERY, CUES) == expected


def test_a_spent_cue_leaves_the_numbers_nothing_names():
    text = b'[{"name":"area","arguments":{"base":10}},{"name":"area","arguments":{"base":'
    assert numbers_for_slot(text, QUERY, CUES, used={b"10"}) == ({b"7"}, False)


def test_standalone_numbers_leave_out_times_dates_and_codes():
    query = b"at 22:30 on 2026-01-14 or 12/05, code D7, gcd of 36 and -48, 5C"
    assert standalone_numbers(query) == [b"36", b"-48", b"5"]
    assert standalone_numbers(b"swim 45, actually 65 minutes, 3 no 4 laps, 2 nonstop") == [b"65", b"4", b"2"]


NUM, TEXT = {"type": "integer"}, {"type": "string"}


def test_positional_keys_need_two_numeric_arguments_the_request_does_not_name():
    props = {"a": NUM, "b": {"type": ["number", "null"]}, "c": NUM, "label": TEXT}
    assert positional_keys(props, {"c": {b"3"}}) == {"a", "b"}
    assert positional_keys(props, {"a": {b"1"}, "c": {b"3"}}) == frozenset()  # one left: nothing to order
    assert positional_keys({"amount": NUM, "to": TEXT}, {}) == frozenset()    # "put 150, actually 250 ..."


GCD = b'[{"name":"gcd","arguments":{'
ORDERED = {"gcd": frozenset({"num1", "num2"})}


@pytest.mark.parametrize("text, used, expected", [
    (GCD + b'"num1":', set(), ({b"36"}, True)),         # the first number for the first argument written
    (GCD + b'"num2":', set(), ({b"36"}, True)),         # whichever argument comes first
    (GCD + b'"num1":48,"num2":', {b"48"}, (None, False)),  # one number left: the rule has nothing to order
    (GCD + b'"label":', set(), (None, False)),          # not one of the ordered arguments
])
def test_positional_arguments_take_the_first_number_left(text, used, expected):
    assert numbers_for_slot(text, b"the gcd of 36 and 48 at 10:30", {}, used, ORDERED) == expected


TRIANGLE = {"name": "triangle_area", "description": "Area of a triangle.", "parameters": {
    "type": "object", "properties": {"base": {"type": "integer"}, "height": {"type": "integer"}},
    "required": ["base", "height"]}}


def test_shipped_model_puts_named_numbers_in_their_slots():
    # (the first release failed "a base of 10 units and height of 5 units" without cues; phase 10 does not)
    requests = [("triangle area: height of 4 and base of 9", parse_tools([TRIANGLE], where="test"))]
    assert Predictor().predict(requests)[0].calls == [
        {"name": "triangle_area", "arguments": {"base": 9, "height": 4}}]
    # (phase 10's weights swapped the two without cues; phase 12's place them on their own)


OVEN = {"name": "preheat_oven", "description": "Preheat the oven.", "parameters": {"type": "object", "properties": {
    "temperature": {"type": "integer"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    "oven": {"type": "string", "enum": ["upper", "lower"]}, "mode": {"type": "string", "enum": ["bake", "convection"]},
    "rack": {"type": "string", "enum": ["upper", "middle"]}}, "required": ["temperature"]}}


def test_optional_enums_the_request_names_are_filled_in():
    tools = parse_tools([OVEN], where="test")
    query = "425 degrees Celsius, convection mode, upper oven, the left or right door"
    calls, warnings = fill_named_enums([{"name": "preheat_oven", "arguments": {"temperature": 425,
                                                                                "mode": "convection"}}], tools, query)
    # unit named; mode already there; "upper" names a value of both oven and rack: neither is filled
    assert calls == [{"name": "preheat_oven", "arguments": {"temperature": 425, "mode": "convection",
                                                            "unit": "celsius"}}]
    assert warnings == ["added preheat_oven's optional argument unit=\"celsius\": the request names it"]
    two = [{"name": "preheat_oven", "arguments": {"temperature": 425}}] * 2
    assert fill_named_enums(two, tools, query) == (two, [])  # which of the two calls would it be for?
    assert fill_named_enums([{"name": "preheat_oven", "arguments": {"temperature": 4}}], tools,
                            "celsius or fahrenheit")[0][0]["arguments"] == {"temperature": 4}  # two values named


def test_shipped_model_fills_in_a_named_enum():
    requests = [("heat the upper oven to 350 fahrenheit, bake mode", parse_tools([OVEN], where="test"))]
    with_fill, without = Predictor().predict(requests)[0], Predictor(fill_enums=False).predict(requests)[0]
    assert with_fill.calls[0]["arguments"]["unit"] == "fahrenheit"
    assert "unit" not in without.calls[0]["arguments"]  # the omission the filling is for
    assert any("unit=\"fahrenheit\": the request names it" in w for w in with_fill.warnings)


GCD_TOOL = {"name": "math.gcd", "description": "Greatest common divisor of two integers.", "parameters": {
    "type": "object", "properties": {"num1": {"type": "integer", "description": "First integer."},
                                     "num2": {"type": "integer", "description": "Second integer."}},
    "required": ["num1", "num2"]}}


def test_shipped_model_keeps_the_order_of_numbers_the_request_does_not_name():
    requests = [("what's the gcd of 36 and 48", parse_tools([GCD_TOOL], where="test"))]
    assert Predictor().predict(requests)[0].calls == [{"name": "math.gcd", "arguments": {"num1": 36, "num2": 48}}]
    # (phase 10's weights swapped them without the rule; phase 12's, trained on 'positional' data, do not)


def _tool(name: str, props: dict, required: list[str]) -> list:
    return parse_tools([{"name": name, "description": "", "parameters": {"type": "object", "properties": props,
                                                                       "required": required}}], where="test")


def test_before_cue_ignores_a_run_that_starts_the_request():
    keys = ["recipient", "message"]
    assert before_cue("message my sister over SMS: 'late'", "my sister", keys) is None  # the verb, not a cue
    assert before_cue("send the message hello to Anna", "hello", keys) == "message"
    assert before_cue("send hello to Anna, the recipient", "Anna", keys) is None  # after it: before_cue skips
    assert before_cue("send hello", "bye", keys) is None  # not in the request


SLUGS = {"project_slug": {"type": "string"}, "analysis_slug": {"type": "string"}, "note": {"type": "string"},
         "code": {"type": "string", "pattern": "^[0-9]+$"}}


@pytest.mark.parametrize("query, args, expected", [
    # concert is named as the project slug, dinner as nothing: the run right before concert decides
    ("for project slug concert, analtsis sulg is dinner", {"project_slug": "dinner", "analysis_slug": "concert"},
     {"project_slug": "concert", "analysis_slug": "dinner"}),
    # each named beside the other's argument
    ("the analysis slug dinner and the project slug concert", {"project_slug": "dinner", "analysis_slug": "concert"},
     {"project_slug": "concert", "analysis_slug": "dinner"}),
    # concert cued only by the word after it, dinner by nothing: too weak to swap
    ("concert project, and then dinner", {"project_slug": "dinner", "analysis_slug": "concert"},
     {"project_slug": "dinner", "analysis_slug": "concert"}),
    # the other value cued to a third argument: no swap
    ("project slug concert, note dinner", {"project_slug": "dinner", "analysis_slug": "concert"},
     {"project_slug": "dinner", "analysis_slug": "concert"}),
    # an optional value moves to the absent argument named right before it
    ("with the note hello there", {"project_slug": "x1", "analysis_slug": "hello there"},
     {"project_slug": "x1", "note": "hello there"}),
    # a required one does not (project_slug must keep a value)
    ("with the note hello there", {"project_slug": "hello there"}, {"project_slug": "hello there"}),
    # nor into an argument whose schema the value breaks
    ("the code abc", {"project_slug": "p", "analysis_slug": "abc"}, {"project_slug": "p", "analysis_slug": "abc"}),
])
def test_swap_cued(query, args, expected):
    tools = _tool("get_aggs", SLUGS, ["project_slug"])
    calls, notes = swap_cued([{"name": "get_aggs", "arguments": args}], tools, query)
    assert calls == [{"name": "get_aggs", "arguments": expected}]
    assert len(notes) == (args != expected)


def test_swap_cued_leaves_other_calls_alone():
    tools = _tool("get_aggs", SLUGS, [])
    calls = [{"name": "other", "arguments": {"project_slug": "a"}}, {"name": "get_aggs", "arguments": "bad"},
             {"name": "get_aggs", "arguments": {"project_slug": 3, "analysis_slug": ""}}]
    assert swap_cued(calls, tools, "the analysis slug 3") == (calls, [])


USER_ATTRS = {"name": "getUserAttributes", "description": "Returns an array containing all attributes corresponding "
              "to this user.", "parameters": {"type": "object", "properties": {
                  "userid": {"type": "string", "description": "User name"},
                  "serverid": {"type": "string", "description": "Base64 encoded server id"}},
                  "required": ["serverid", "userid"]}}


def test_shipped_model_puts_values_where_the_request_names_them():
    # from the generated validation sample (seed 13, unseen tools): the model alone swaps the two ids
    query = ("quick question: let's return an array containing all attributes corresponding to this user - base64 "
             "encoded server id: 56651 and userid NHTD3.")
    requests = [(query, parse_tools([USER_ATTRS], where="test"))]
    swapped = Predictor().predict(requests)[0]
    assert swapped.calls == [{"name": "getUserAttributes", "arguments": {"userid": "NHTD3", "serverid": "56651"}}]
    assert any("swapped" in w for w in swapped.warnings)
    assert Predictor(distinct=False).predict(requests)[0].calls[0]["arguments"]["userid"] == "56651"


AUDIT = {"name": "audit_passwords", "description": "Scan the vault.", "parameters": {"type": "object", "properties": {
    "issues": {"type": "string"}, "older_than_months": {"type": "integer", "minimum": 1, "maximum": 120},
    "score": {"type": "number"}, "limit": {"type": "integer"}}, "required": ["issues"]}}


@pytest.mark.parametrize("query, arguments, added", [
    ("weak ones, older than months is 24", {"issues": "weak"}, {"older_than_months": 24}),
    ("weak, score of 2.5", {"issues": "weak"}, {"score": 2.5}),  # a float where the schema takes any number
    ("weak, older than months is 2.5", {"issues": "weak"}, {}),  # not an integer
    ("weak, older than months is 240", {"issues": "weak"}, {}),  # over the schema's maximum
    ("weak, older than months is 24", {"issues": "weak", "older_than_months": 12}, {}),  # given already
    ("limit 24, older than months is 24", {"issues": "weak", "limit": 24}, {}),  # the answer uses 24 already
    ("weak ones from 24 months", {"issues": "weak"}, {"older_than_months": 24}),  # a cue after it counts too
    ("weak ones from 24 weeks", {"issues": "weak"}, {}),  # the number is not cued to the argument
])
def test_fill_cued_numbers(query, arguments, added):
    tools = parse_tools([AUDIT], where="test")
    calls, notes = fill_cued_numbers([{"name": "audit_passwords", "arguments": arguments}], tools, query)
    assert calls == [{"name": "audit_passwords", "arguments": {**arguments, **added}}]
    assert notes == [f"added audit_passwords's optional argument {k}={v}: the request names it beside the number"
                     for k, v in added.items()]
    twice = [{"name": "audit_passwords", "arguments": arguments}] * 2  # which call is it for?
    assert fill_cued_numbers(twice, tools, query) == (twice, [])
