"""Compressed parallel requests: one phrasing that asks for several calls of the same tool.

People rarely repeat a whole request per call ("find the factorial of 5 and then find the factorial of 10").
They list the values that change: "the factorial of 5, 10 and 15", "play Taylor Swift and Maroon 5 for 20
and 15 minutes respectively", "... 4 seconds, then repeat with 10 seconds". `expand` turns one phrased call
into such a request: it finds the value segments the Phraser traced, draws more values for one or two
parameters, rewrites the segments in place and returns one answer per listed value; `listed_call` phrases
the call and expands it in one step.
"""
from __future__ import annotations

import json
import random
import re

from needle.data.phrasing import Phraser, free_text
from needle.data.slots import ToolSpec, sample_value, words_of

LISTABLE = ("string", "integer", "number")
_TAIL = re.compile(r"([.?!]*\s*)$")


def coordinate(rng: random.Random, surfaces: list[str], d: dict) -> str:
    """'5', '10', '15' -> '5, 10 and 15' (or ', and', or '&'); `d` is the phrasing file (pools/phrasing.json)."""
    if len(surfaces) == 2:
        return rng.choice(d["list_pairs"]).format(*surfaces)
    return ", ".join(surfaces[:-1]) + rng.choice(d["list_lasts"]) + surfaces[-1]


def listable(name: str, schema: dict) -> bool:
    """A parameter whose values can be listed: a short string, a number or an enum, never prose or a flag."""
    return ("enum" in schema or schema.get("type") in LISTABLE) and not free_text(name, schema)


def others(rng: random.Random, phraser: Phraser, spec: ToolSpec, name: str, first: tuple, n: int) -> list | None:
    """`first` plus n-1 more (answer, surface) pairs for one parameter, all answers and surfaces distinct."""
    found, keys, surfaces = [first], {json.dumps(first[0])}, {first[1].lower()}
    for _ in range(8 * n):
        if len(found) == n:
            return found
        answer, surface = sample_value(rng, phraser.pools, name, spec.props[name], spec.values.get(name))
        key = json.dumps(answer)
        if key not in keys and surface.lower() not in surfaces and surface.strip():
            found.append((answer, surface))
            keys.add(key)
            surfaces.add(surface.lower())
    return None


def _before_end(segs: list, parts: list) -> None:
    """Insert `parts` before the request's closing punctuation ('... 10 respectively?')."""
    last = segs[-1]
    if last[1]:
        segs += parts
        return
    tail = _TAIL.search(last[0]).group(1)
    last[0] = last[0][:len(last[0]) - len(tail)]
    segs += parts + [[tail, False]]


def expand(rng: random.Random, phraser: Phraser, spec: ToolSpec, segs: list, args: dict,
           trace: list) -> list[dict] | None:
    """Rewrite one phrased call (its `segs`, `args`, and the Phraser's `trace` of value segments) into a
    request for 2-3 calls of `spec`; returns their answers in the order mentioned, or None if no parameter
    of this phrasing can be listed. `segs` is changed in place."""
    present = {id(s) for s in segs}
    slots, seen = [], set()
    for name, schema, answer, seg in trace:  # top-level values stated once, exactly as in the answer
        if (id(seg) in present and spec.props.get(name) is schema and name not in seen
                and args.get(name) == answer and listable(name, schema)):
            slots.append((name, seg))
            seen.add(name)
    if not slots:
        return None
    n, style = rng.choice([2, 2, 3]), rng.random()
    chosen = rng.sample(slots, 2) if style < 0.25 and len(slots) >= 2 else [rng.choice(slots)]
    values = {}
    for name, seg in chosen:
        drawn = others(rng, phraser, spec, name, (args[name], seg[0]), n)
        if drawn is None:
            return None
        values[name] = drawn
    if len(chosen) == 2:  # "A and B for 20 and 15 minutes respectively"
        for name, seg in chosen:
            seg[0] = coordinate(rng, [s for _, s in values[name]], phraser.d)
        _before_end(segs, [[rng.choice(phraser.d["list_respectively"]), False]])
    elif style < 0.5:  # "... 4 seconds, then repeat with d time 10 and 12"
        name, seg = chosen[0]
        form = rng.choice(phraser.d["list_repeats"]).replace("{label}", words_of(name))
        before, after = form.split("{v}")
        rest = [s for _, s in values[name][1:]]
        _before_end(segs, [[before, False], [coordinate(rng, rest, phraser.d) if n > 2 else rest[0], True],
                           [after, False]])
    else:  # "the factorial of 5, 10 and 15"
        name, seg = chosen[0]
        seg[0] = coordinate(rng, [s for _, s in values[name]], phraser.d)
    return [{"name": spec.name, "arguments": {**args, **{k: v[i][0] for k, v in values.items()}}}
            for i in range(n)]


def listed_call(rng: random.Random, phraser: Phraser, spec: ToolSpec) -> tuple[list, list[dict] | None]:
    """(segments, answers) of one request for 2-3 calls of `spec`; answers None when this phrasing has nothing
    to list."""
    phraser.trace = trace = []
    try:
        segs, args = phraser.call(rng, spec)
    finally:
        phraser.trace = None
    return segs, expand(rng, phraser, spec, segs, args, trace)
