"""Held-out metrics on the edge cases: empty vs empty, duplicates, reordered arguments, wrong types."""
from needle.eval.heldout import Tally, argument_counts, name_counts, score_split
from needle.eval.metrics import exact_match

A = {"name": "set_timer", "arguments": {"minutes": 5, "label": "tea"}}
B = {"name": "send_text", "arguments": {"to": "Ana", "body": "hi"}}


def test_exact_match_edge_cases():
    assert exact_match([], [])
    assert not exact_match([A], [])
    assert not exact_match([A], [A, A])  # two identical calls never collapse into one
    assert exact_match([A, A, B], [B, A, A])
    assert exact_match([{"name": "set_timer", "arguments": {"label": "tea", "minutes": 5.0}}], [A])
    assert not exact_match([{"name": "set_timer", "arguments": {"minutes": "5", "label": "tea"}}], [A])


def test_name_f1_and_argument_accuracy():
    assert name_counts([A, A], [A]) == (1, 2, 1)
    assert name_counts([], [A]) == (0, 0, 1)
    wrong_type = {"name": "set_timer", "arguments": {"minutes": "5", "label": "tea"}}
    assert argument_counts([wrong_type], [A]) == (1, 2)
    assert argument_counts([B, A], [A, B]) == (4, 4)
    assert argument_counts([A], [A, A]) == (2, 4)  # one predicted call pairs with one expected call


def test_abstention_and_parse_rate():
    t = Tally()
    t.add([], [])  # right to abstain
    t.add([A], [])  # should have abstained
    t.add([], [A], parsed=False)  # did not parse: counts as no call
    t.add([B], [A])  # called (right decision), wrong tool
    m = t.metrics()
    assert m["n"] == 4 and m["exact_match"] == 0.25 and m["parse_rate"] == 0.75
    assert m["abstain_accuracy"] == 0.5 and m["call_accuracy"] == 0.5 and m["no_call_accuracy"] == 0.5
    assert m["tool_name_f1"] == 0.0 and m["argument_accuracy"] == 0.0


def test_breakdowns_by_call_type_and_tools_offered():
    rows = [([A], True, [A], "single", 3), ([], True, [A], "single", 5), ([], False, [], "none", 5)]
    r = score_split(rows)
    assert r["exact_match"] == 2 / 3 and r["parse_rate"] == 2 / 3
    assert r["by_call_type"]["single"]["exact_match"] == 0.5 and r["by_call_type"]["none"]["n"] == 1
    assert r["by_tools_offered"]["5"]["exact_match"] == 0.5
