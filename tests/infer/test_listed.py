"""Listed values: a call whose value is one item of a list in the request gets a copy for each other item."""
import pytest

from needle.data.schema import parse_tools
from needle.infer.listed import expand_listed, listed_items
from needle.infer.predict import Predictor


@pytest.mark.parametrize("query, value, items", [
    ("Find the factorial of 5,10 and 15.", 15, ["5", "10", "15"]),
    ("5, 10, 15", 10, ["5", "10", "15"]),
    ("at both 35 and 15 percent brightness", 35, ["35", "15"]),
    ("songs from Taylor Swift and Maroon 5, with a play time", "Maroon 5", ["Taylor Swift", "Maroon 5"]),
    ("details of Case No 28473 and 64725, their history", "28473", ["28473", "64725"]),
    ("set a timer for 5 minutes and 30 seconds", 5, []),              # different units: no list
    ("20 minutes and 15 minutes respectively", 20, []),              # paired with another list
    ("between 9 and 11", 9, []),                                     # a range
    ("Paris, with a view", "Paris", []),                             # words need an "and"
    ("workspace Coding, and also add a shortcut", "Coding", []),     # names only: "also" is no item
    ("with id 15480 and I have to", "15480", []),
    ("the dog food and cat litter", "dog food", []),
    ("dim the kitchen to 10", 10, []),
    ("the gcd of 36 or 48", 36, []),                                 # "or" offers a choice
    ("5 and 10", True, []),
])
def test_listed_items(query, value, items):
    assert listed_items(query, value) == items


TOOLS = parse_tools([
    {"name": "factorial", "description": "n!", "parameters": {"type": "object", "properties": {
        "number": {"type": "integer"}}, "required": ["number"]}},
    {"name": "gcd", "description": "gcd", "parameters": {"type": "object", "properties": {
        "a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}},
    {"name": "play", "description": "play", "parameters": {"type": "object", "properties": {
        "artist": {"type": "string"}, "mode": {"type": "string", "enum": ["Shuffle", "Repeat"]}}}},
], where="test")


def call(name, **arguments):
    return {"name": name, "arguments": arguments}


def test_each_listed_value_gets_a_call_in_the_request_order():
    calls, warnings = expand_listed([call("factorial", number=15)], TOOLS, "the factorial of 5, 10 and 15")
    assert calls == [call("factorial", number=5), call("factorial", number=10), call("factorial", number=15)]
    assert warnings == ["added a call to factorial with number=5: the request lists it with 15",
                        "added a call to factorial with number=10: the request lists it with 15"]


def test_values_the_answer_already_uses_are_not_repeated():
    query = "the factorial of 5, 10 and 15"
    made = [call("factorial", number=5), call("factorial", number=10)]
    calls, warnings = expand_listed(made, TOOLS, query)  # (15 goes after the call it was listed with)
    assert calls == [call("factorial", number=5), call("factorial", number=15), call("factorial", number=10)]
    assert warnings == ["added a call to factorial with number=15: the request lists it with 5"]
    gcd = [call("gcd", a=36, b=48)]  # both numbers used by the one call: nothing to add
    assert expand_listed(gcd, TOOLS, "the gcd of 36 and 48") == (gcd, [])


def test_other_arguments_are_kept_and_the_schema_holds():
    calls, _ = expand_listed([call("play", artist="Anna", mode="Shuffle")], TOOLS, "play Anna and Bob on shuffle")
    assert calls == [call("play", artist="Anna", mode="Shuffle"), call("play", artist="Bob", mode="Shuffle")]
    enum = [call("play", mode="Shuffle")]  # "Repeat" is a value of the enum, "Loop" is not
    assert expand_listed(enum, TOOLS, "Shuffle and Loop") == (enum, [])
    assert len(expand_listed(enum, TOOLS, "Shuffle and Repeat")[0]) == 2
    ints = [call("factorial", number=5)]
    assert expand_listed(ints, TOOLS, "the factorial of 5 and 2.5") == (ints, [])  # not an integer


FACTORIAL = {"name": "math.factorial", "description": "Factorial of a whole number.", "parameters": {
    "type": "object", "properties": {"number": {"type": "integer", "description": "The number."}},
    "required": ["number"]}}


def test_shipped_model_makes_a_call_per_listed_value():
    requests = [("Find the factorial of 5, 10 and 15.", parse_tools([FACTORIAL], where="test"))]
    assert [c["arguments"]["number"] for c in Predictor().predict(requests)[0].calls] == [5, 10, 15]
    # (phase 10's weights made one call, for 15, without the expansion; phase 12's make all three on their own)
