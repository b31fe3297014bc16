"""Held-out generalisation metrics: exact match, tool-name F1, argument accuracy, parse rate, abstention.

Inputs are per-example (predicted, parsed, expected): an output that did not parse arrives as [] with
parsed False, i.e. it counts as "no call" (as `needle predict` writes it) and lowers the parse rate.
Breakdowns by call type and by number of tools offered show where a model fails.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass

from needle.eval.metrics import normalise_numbers, exact_match


def _value(v) -> str:
    return json.dumps(normalise_numbers(v), sort_keys=True, ensure_ascii=False, default=str)


def name_counts(predicted: list[dict], expected: list[dict]) -> tuple[int, int, int]:
    """(true positives, predicted count, expected count) over tool names as multisets."""
    p = Counter(c.get("name") for c in predicted or [])
    e = Counter(c.get("name") for c in expected)
    return sum((p & e).values()), sum(p.values()), sum(e.values())


def argument_counts(predicted: list[dict], expected: list[dict]) -> tuple[int, int]:
    """(right, total) expected arguments, pairing each expected call with an unused predicted call of
    the same name that gets the most of its arguments right."""
    unused = list(predicted or [])
    right = total = 0
    for call in expected:
        args = call.get("arguments") or {}
        total += len(args)
        same = [p for p in unused if p.get("name") == call.get("name")]
        if not same:
            continue
        score = lambda p: sum(k in (p.get("arguments") or {}) and _value(p["arguments"][k]) == _value(v)  # noqa: E731
                              for k, v in args.items())
        best = max(same, key=score)
        right += score(best)
        unused.remove(best)
    return right, total


@dataclass
class Tally:
    n: int = 0
    exact: int = 0
    parsed: int = 0
    name_tp: int = 0
    name_pred: int = 0
    name_exp: int = 0
    args_right: int = 0
    args_total: int = 0
    abstain_n: int = 0  # expected no call
    abstain_ok: int = 0
    call_n: int = 0  # expected at least one call
    call_ok: int = 0

    def add(self, predicted: list[dict], expected: list[dict], parsed: bool = True) -> None:
        self.n += 1
        self.parsed += parsed
        self.exact += exact_match(predicted, expected)
        tp, np_, ne = name_counts(predicted, expected)
        self.name_tp, self.name_pred, self.name_exp = self.name_tp + tp, self.name_pred + np_, self.name_exp + ne
        r, t = argument_counts(predicted, expected)
        self.args_right, self.args_total = self.args_right + r, self.args_total + t
        if expected:
            self.call_n += 1
            self.call_ok += bool(predicted)
        else:
            self.abstain_n += 1
            self.abstain_ok += not predicted

    def metrics(self) -> dict:
        div = lambda a, b: a / b if b else None  # noqa: E731
        precision, recall = div(self.name_tp, self.name_pred), div(self.name_tp, self.name_exp)
        f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0
        decided = self.abstain_ok + self.call_ok
        return {"n": self.n, "exact_match": div(self.exact, self.n), "tool_name_f1": f1,
                "argument_accuracy": div(self.args_right, self.args_total), "parse_rate": div(self.parsed, self.n),
                "no_call_accuracy": div(decided, self.abstain_n + self.call_n),
                "abstain_accuracy": div(self.abstain_ok, self.abstain_n), "call_accuracy": div(self.call_ok, self.call_n)}


def score_split(rows: list[tuple[list[dict], bool, list[dict], str, int]]) -> dict:
    """rows: (predicted, parsed, expected, call type, tools offered) -> overall metrics plus breakdowns."""
    total, by_type, by_tools = Tally(), defaultdict(Tally), defaultdict(Tally)
    for predicted, parsed, expected, kind, n_tools in rows:
        for tally in (total, by_type[kind], by_tools[n_tools]):
            tally.add(predicted, expected, parsed)
    return {**total.metrics(),
            "by_call_type": {k: v.metrics() for k, v in sorted(by_type.items())},
            "by_tools_offered": {str(k): v.metrics() for k, v in sorted(by_tools.items())}}
