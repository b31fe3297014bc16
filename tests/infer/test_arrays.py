"""Array values: repeats re-chosen or dropped, lists completed from the request, the request's order."""
import pytest

from needle.data.format import encode_prompt
from needle.data.schema import parse_tools
from needle.infer.arrays import listed_after, listed_before, repair_arrays, stated_times
from needle.infer.predict import Predictor

SHOPPING = {"name": "add_to_shopping_list", "description": "Add items to the shopping list.",
            "parameters": {"type": "object", "properties": {
                "items": {"type": "array", "items": {"type": "string"}, "description": "Items to add."},
                "store": {"type": "string", "description": "Store to buy them at."}}, "required": ["items"]}}
STATS = {"name": "stats", "description": "Statistics of numbers.", "parameters": {"type": "object", "properties": {
    "numbers": {"type": "array", "items": {"type": "number"}},
    "measures": {"type": "array", "items": {"type": "string", "enum": ["mean", "median", "max"]}}},
    "required": ["numbers"]}}
SURVEY = {"name": "create_survey", "description": "Create a new survey.", "parameters": {"type": "object",
          "properties": {"title": {"type": "string"},
                         "questions": {"type": "array", "items": {"type": "string"}, "description": "Topics."}},
          "required": ["questions"]}}
UPLOADS = {"name": "get_upload_statuses", "description": "Check the status of multiple uploads.", "parameters": {
    "type": "object", "properties": {"ids": {"type": "array", "items": {"type": "string"}}}, "required": ["ids"]}}


def test_stated_times_counts_whole_words_and_numbers():
    assert stated_times("eggs", "add eggs and more eggs") == 2
    assert stated_times("egg", "add eggs") == 1  # at least once: values the request words differently
    assert stated_times(18, "the mean of 12, 18, 180 and 18") == 2
    assert stated_times(18.0, "the mean of 12 and 18") == 1
    assert stated_times(True, "x") > 1 and stated_times({"a": 1}, "x") > 1


@pytest.mark.parametrize("query, item, after, before", [
    ("add basmati rice, printer paper, and paper towels to the list", "printer paper",
     ["paper", "paper towels", "paper towels to", "paper towels to the"], ["rice", "basmati rice", "add basmati rice"]),
    ("block wikipedia.org and khanacademy.org. Thanks", "wikipedia.org", ["khanacademy.org"], []),
    ("songs of As It Was, Bad Guy & Despacito?", "Bad Guy", ["Despacito"],
     ["Was", "It Was", "As It Was", "of As It Was"]),
    ("the kitchen to 10", "kitchen", [], []),
    ("Washington, Oregon and Idaho", "Was", [], []),  # whole words only
])
def test_items_listed_beside_an_item(query, item, after, before):
    assert listed_after(query, item) == after
    assert listed_before(query, item) == before


def _repaired(model, tok, query, tools, calls):
    offered = parse_tools(tools, where="test")
    enc = encode_prompt(tok, query, offered, model.cfg.max_encoder_len).ids
    return repair_arrays(model, tok, enc, calls, offered, query)


def test_repeats_of_fixed_items_are_dropped_and_other_arrays_left_alone(tiny_model, tok):
    calls = [{"name": "stats", "arguments": {"numbers": [12, 18, 18, 18, 30], "measures": ["mean", "mean"]}}]
    out, notes = _repaired(tiny_model, tok, "the mean of 12, 18, 18 and 30", [STATS], calls)
    assert out == [{"name": "stats", "arguments": {"numbers": [12, 18, 18, 30], "measures": ["mean"]}}]
    assert len(notes) == 2 and all("dropped the repeat" in n for n in notes)
    assert calls[0]["arguments"]["numbers"] == [12, 18, 18, 18, 30]  # the input is not changed
    fine = [{"name": "stats", "arguments": {"numbers": [12, 18]}}, {"name": "unknown", "arguments": {"x": [1, 1]}}]
    assert _repaired(tiny_model, tok, "the mean of 12 and 18", [STATS], fine) == (fine, [])


def test_a_repeated_free_string_is_rechosen_or_dropped(tiny_model, tok):
    query = "add eggs, milk and bread to the list"
    calls = [{"name": "add_to_shopping_list", "arguments": {"items": ["eggs", "eggs"]}}]
    out, notes = _repaired(tiny_model, tok, query, [SHOPPING], calls)
    items = out[0]["arguments"]["items"]
    assert items[0] == "eggs" and len(items) == len(set(items)) and all(i in query for i in items)
    assert notes and "repeats" in notes[0]


@pytest.mark.parametrize("query, tool, key, right, unaided", [
    ("please create a new survey, using newsletter and invoice as the questions", SURVEY, "questions",
     ["newsletter", "invoice"], ["newsletter"]),  # the model alone stops after the first item
    ("check the status of uploads 1P-78324", UPLOADS, "ids", ["1P-78324"], None),  # phase 10 alone repeated it
])
def test_shipped_model_lists_each_item_once_and_all_of_them(query, tool, key, right, unaided):
    requests = [(query, parse_tools([tool], where="test"))]
    (call,) = Predictor().predict(requests)[0].calls
    assert call["name"] == tool["name"] and call["arguments"][key] == right
    if unaided is not None:  # the failure the repair is for, still there without it
        (before,) = Predictor(repair_lists=False).predict(requests)[0].calls
        assert before["arguments"][key] == unaided
