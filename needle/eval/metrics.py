"""Call-level metrics. Calls compare as an order-independent multiset: two identical calls stay two.

Arguments compare by value after JSON canonicalisation, so key order never matters and 5 == 5.0.
"""
from __future__ import annotations

import json
from collections import Counter


def canonical_call(call: dict) -> str:
    return json.dumps({"name": call.get("name"), "arguments": call.get("arguments") or {}}, sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"), default=str)


def normalise_numbers(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: normalise_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise_numbers(v) for v in value]
    return value


def call_multiset(calls: list[dict]) -> Counter:
    return Counter(canonical_call(normalise_numbers(c)) for c in calls)


def exact_match(predicted: list[dict], expected: list[dict]) -> bool:
    """True when both lists hold the same calls the same number of times, in any order."""
    return call_multiset(predicted) == call_multiset(expected)


def exact_match_rate(predicted: list[list[dict]], expected: list[list[dict]]) -> float:
    if len(predicted) != len(expected):
        raise ValueError(f"{len(predicted)} predictions for {len(expected)} examples")
    return sum(exact_match(p, e) for p, e in zip(predicted, expected)) / max(len(expected), 1)
