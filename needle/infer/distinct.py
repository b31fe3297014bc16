"""Distinct values: words of the request written into two arguments are given to one of them.

The small model often copies the same words into two string arguments of one call, or into one argument of two
calls to a tool (`create_keyboard_shortcut {"keys": "Uber", "app": "Uber"}` for "alt+space for opening Uber").
On the generated validation sample (1,500 requests, seed 13) 139 answers did it within a call, all of them wrong;
only 3 expected answers do. Where the request says the value once, the model scores it and the other choices (the
request's spans, as needle/infer/repair.py scores them; an enum's other values; the TOP_CHOICES whose first token
it rates highest) as each of those arguments, given the answer written up to it. The value stays with the
argument the request names beside it (`value_cue`, needle/infer/cues.py: "the from account brokerage"), or else
with the one that prefers it most over its own best alternative. Each other argument is dropped when optional
and otherwise takes its best alternative, however unlikely: the repeated value was wrong anyway (model card,
"Distinct values").
"""
from __future__ import annotations

from needle.data.format import compact
from needle.data.grounding import schema_constants
from needle.data.schema import Tool, value_validator
from needle.infer.cues import value_cue
from needle.infer.repair import Encoded, as_encoded, query_spans, span_logprobs, value_prefix
from needle.model.model import Needle

TOP_CHOICES = 16  # choices scored in full (the value among them): those whose first token the model rates highest


def repeated_values(args: dict) -> dict[str, list[str]]:
    """String values that two or more arguments share: value -> their keys."""
    keys: dict[str, list[str]] = {}
    for k, v in args.items():
        if isinstance(v, str) and v.strip():
            keys.setdefault(v, []).append(k)
    return {v: ks for v, ks in keys.items() if len(ks) > 1}


def _margin(value: float, alternative: float) -> float:
    """How much an argument prefers the repeated value to its best alternative (log-probabilities, -inf when a
    choice does not fit the decoder)."""
    if alternative == float("-inf"):
        return float("inf") if value > float("-inf") else float("-inf")
    return value - alternative


def repeated_slots(calls: list[dict]) -> list[tuple[str, list[tuple[int, str]]]]:
    """Where the calls repeat a string: within one call (any arguments), then across calls to the same tool (the
    same argument). Each as (value, its slots as (call index, key))."""
    groups = [(v, [(i, k) for k in ks]) for i, c in enumerate(calls) if isinstance(c.get("arguments"), dict)
              for v, ks in repeated_values(c["arguments"]).items()]
    by_tool: dict[str, list[int]] = {}
    for i, c in enumerate(calls):
        if isinstance(c.get("arguments"), dict):
            by_tool.setdefault(c.get("name"), []).append(i)
    for indices in by_tool.values():
        shared: dict[tuple[str, str], list[int]] = {}
        for i in indices:
            for k, v in calls[i]["arguments"].items():
                if isinstance(v, str) and v.strip():
                    shared.setdefault((k, v), []).append(i)
        groups += [(v, [(i, k) for i in where]) for (k, v), where in shared.items() if len(where) > 1]
    return groups


def distinct_values(model: Needle, tok, enc: "list[int] | Encoded", calls: list[dict], tools: list[Tool],
                    query: str) -> tuple[list[dict], list[str]]:
    """The calls with each string the request says once kept in one argument (see the module docstring), and a
    note for every argument changed."""
    schemas, notes, spans, enc = {t.name: t.parameters for t in tools}, [], None, as_encoded(model, enc)
    calls = [dict(c, arguments=dict(c["arguments"])) if isinstance(c.get("arguments"), dict) else c for c in calls]
    folded = query.casefold()
    for value, slots in repeated_slots(calls):
        slots = [(i, k) for i, k in slots if isinstance(schemas.get(calls[i].get("name")), dict)
                 and calls[i]["arguments"].get(k) == value]  # known tools; not changed by an earlier group
        if len(slots) < 2 or folded.count(value.casefold()) != 1:  # said twice: both may be meant
            continue
        spans = query_spans(query) if spans is None else spans
        best = {}  # slot -> (its score for the value, its best alternative, that one's score)
        for i, k in slots:
            schema = schemas[calls[i]["name"]]
            taken = {v for v in calls[i]["arguments"].values() if isinstance(v, str)}
            taken |= {c["arguments"].get(k) for c in calls if c.get("name") == calls[i]["name"]
                      and isinstance(c.get("arguments"), dict)}  # what the same argument of the same tool says
            props = (schema.get("properties") or {}).get(k) or {}
            fits = value_validator(props).is_valid
            options = [s for s in (sorted(schema_constants(props)) or spans) if s not in taken and fits(s)]
            if not options:
                break
            prefix = value_prefix(calls, i, k) + '"'
            scores = span_logprobs(model, tok, enc.cross(), prefix, [value] + options, top=TOP_CHOICES)
            j = max(range(len(options)), key=lambda n: scores[n + 1])
            best[i, k] = scores[0], options[j], scores[j + 1]
        else:
            cued = value_cue(query, value, [k for _, k in slots]) if len({i for i, _ in slots}) == 1 else None
            notes += _resolve(calls, schemas, value, best, (slots[0][0], cued) if cued else None)
    return calls, notes


def _resolve(calls: list[dict], schemas: dict, value: str, best: dict, keeper: tuple[int, str] | None) -> list[str]:
    """Keep `value` in `keeper`, or else in the slot that prefers it most; drop it from the others (optional) or give
    them their best alternative (required). Changes `calls`; returns the notes."""
    keeper, notes = keeper or max(best, key=lambda slot: _margin(best[slot][0], best[slot][2])), []
    where = calls[keeper[0]]["name"] + "'s " + keeper[1]
    for (i, k), (_, span, score) in best.items():
        name, args = calls[i]["name"], calls[i]["arguments"]
        if (i, k) == keeper:
            continue
        if k not in set(schemas[name].get("required") or []):
            del args[k]
            notes.append(f"dropped {name}'s optional {k}: it repeated {compact(value)} from {where}")
        elif score > float("-inf"):
            args[k] = span
            notes.append(f"{name}'s {k} repeated {compact(value)} from {where}: replaced by {compact(span)}, the "
                         f"other choice the model rates highest (log-probability {score:.2f})")
    return notes
