"""Clauses an answer leaves out: how a request is cut, which clauses are answered alone, which calls are added,
and the shipped model gaining the call it left out."""
import json
from pathlib import Path

import pytest

from needle.data.schema import parse_tools
from needle.infer.clauses import add_clause_calls, clauses, open_clauses
from needle.infer.predict import Predictor


def parts(query):
    return [query[a:b] for a, b in clauses(query)]


@pytest.mark.parametrize("query, expected", [
    ("dim the kitchen to 10", ["dim the kitchen to 10"]),
    ("is it possible to list carpool?, after that put a sad face on Nico's message",
     ["is it possible to list carpool", "put a sad face on Nico's message"]),
    ("Open the camera in pro mode. Also, take a 60 second video; thanks!",
     ["Open the camera in pro mode", "take a 60 second video", "thanks"]),
    ("play jazz and then set a timer plus call Mum as well as text Dad",
     ["play jazz", "set a timer", "call Mum", "text Dad"]),
    ("brightness 85 AND color yellow, then ...", ["brightness 85", "color yellow"]),  # nothing but punctuation: none
    ("Thursday, then", ["Thursday, then"]),  # a joiner needs words on both sides of its blank
])
def test_a_request_is_cut_at_its_joiners(query, expected):
    assert parts(query) == expected


TOOLS = parse_tools([
    {"name": "set_room_lights", "description": "Set a room's lights.", "parameters": {"type": "object", "properties": {
        "color": {"type": "string"}, "brightness": {"type": "integer"}}}},
    {"name": "list_carpool", "description": "Show all carpools.", "parameters": {"type": "object", "properties": {}}},
    {"name": "get_directions", "description": "Directions to a place.", "parameters": {
        "type": "object", "properties": {"destination": {"type": "string"}}, "required": ["destination"]}},
])


def test_only_clauses_long_enough_free_of_the_answers_values_and_about_a_tool_it_lacks_are_open():
    query = "set room lights: color of yellow and brightness of 85, after that please list all carpools for me"
    calls = [{"name": "set_room_lights", "arguments": {"color": "yellow", "brightness": 85}}]
    assert [query[a:b] for a, b in open_clauses(query, calls, TOOLS, 4.0)] == ["please list all carpools for me"]
    assert open_clauses(query, calls + [{"name": "list_carpool", "arguments": {}}], TOOLS, 4.0) == []  # called
    assert open_clauses(query, calls, TOOLS, 100.0) == []  # no tool that relevant to it
    assert open_clauses("list all carpools for me", calls, TOOLS, 4.0) == []  # one clause: nothing to add
    assert open_clauses("Go ahead and list carpools", [], TOOLS, 4.0) == []  # "Go ahead" is too short, and the rest
    assert open_clauses("Go ahead and list carpools please", [], TOOLS, 4.0) == [(13, 33)]


def test_calls_from_clauses_are_added_for_tools_the_answer_lacks_and_the_clause_is_about():
    query = "list all carpools for me, then set room lights: color of yellow and go ahead with it"
    calls = [{"name": "set_room_lights", "arguments": {"color": "yellow"}}]
    (a, b), (c, d), (e, f) = clauses(query)
    answers = [(a, b, [{"name": "list_carpool", "arguments": {}}]),
               (c, d, [{"name": "set_room_lights", "arguments": {}}]),  # a tool the answer calls already
               (e, f, [{"name": "get_directions", "arguments": {"destination": "ahead"}}])]  # not about it
    out, notes = add_clause_calls(calls, answers, TOOLS, query, floor=4.0)
    assert out == [{"name": "list_carpool", "arguments": {}}] + calls  # the request's order
    assert len(notes) == 1 and "list_carpool" in notes[0] and "list all carpools for me" in notes[0]
    assert calls == [{"name": "set_room_lights", "arguments": {"color": "yellow"}}]  # not changed in place
    out, notes = add_clause_calls(calls, answers, TOOLS, query, floor=100.0)
    assert out == calls and notes == []


def test_a_clause_call_that_copies_only_values_the_answer_has_is_not_added():
    query = "set room lights: color of yellow and please list all the carpools"
    calls = [{"name": "set_room_lights", "arguments": {"color": "yellow"}}]
    (a, b), (c, d) = clauses(query)
    again = [(c, d, [{"name": "list_carpool", "arguments": {"note": "Yellow"}}])]  # any case
    assert add_clause_calls(calls, again, TOOLS, query, floor=4.0) == (calls, [])
    new = [(c, d, [{"name": "list_carpool", "arguments": {"note": "yellow", "seats": 2}}])]
    assert add_clause_calls(calls, new, TOOLS, query, floor=4.0)[0] == calls + new[0][2]


CASE = json.loads((Path(__file__).parent / "clause_case.json").read_text())


def test_the_shipped_model_gains_the_call_its_answer_left_out():
    """A generated validation request: whole, the model answers only its second clause; its first, alone, is
    answered with the call it left out."""
    tools, request = parse_tools(CASE["tools"]), CASE["query"]
    plain = Predictor(clause_calls=False).predict([(request, tools)])[0]
    assert [c["name"] for c in plain.calls] == ["react_to_message"]
    answer = Predictor().predict([(request, tools)])[0]
    assert answer.calls == CASE["expected"] and answer.valid
    assert any(w.startswith("added") and "list_carpool" in w for w in answer.warnings)
