"""Numbers given by position: "the gcd of 36 and 48", "get the heatmap tile 7, 64 and 41".

Where a tool takes several numbers, people often give them in the tool's order without naming each. Every other
phrasing of the generator names each argument beside its value, so the model never learned that order (BFCL: "the GCD
of 12 and 18" -> `num1` 18, `num2` 12; decoding now patches it, needle/infer/cues.py). `positional_call` states the
first 2-3 numeric arguments of the offered schema as a bare list after the action, in that order; the tool's other
arguments it states are named as usual.
"""
from __future__ import annotations

import random

from needle.data.lists import coordinate
from needle.data.phrasing import OPTIONAL_P, Phraser, imperative, statable
from needle.data.slots import ToolSpec, copyable, words_of

MAX_LISTED = 3
OPENERS = [" ", " for ", " of ", " with ", " using ", " from "]


def numeric(name: str, schema: dict) -> bool:
    """A number the request can state bare: an integer or number argument without an enum."""
    return schema.get("type") in ("integer", "number") and "enum" not in schema and copyable(name, schema)


def _last_required(spec: ToolSpec, names: list[str]) -> int:
    """The position in `names` of the last required argument (-1 when none is)."""
    required = set(spec.parameters.get("required", []))
    return max((i for i, k in enumerate(names) if k in required), default=-1)


def positional_names(spec: ToolSpec, order: list[str]) -> list[str]:
    """The numeric arguments a request could give by position, in the offered schema's order `order` (every
    required one among the first three; empty when fewer than two)."""
    names = [k for k in order if k in spec.props and numeric(k, spec.props[k])]
    return names if len(names) >= 2 and _last_required(spec, names) < MAX_LISTED else []


def positional_call(rng: random.Random, phraser: Phraser, spec: ToolSpec, order: list[str]) -> tuple[list, dict] | None:
    """(segments, arguments) of one call whose first 2-3 numeric arguments (in `order`, the tool's properties as
    offered) are listed bare; None when the tool has no such arguments (or no distinct numbers were drawn)."""
    names = positional_names(spec, order)
    if not names:
        return None
    listed = names[:rng.randint(max(2, _last_required(spec, names) + 1), min(MAX_LISTED, len(names)))]
    for _ in range(8):  # distinct numbers: "21, 57 and 21" would not show the order
        drawn = [phraser.value(rng, spec, name, spec.props[name]) for name in listed]
        if len({answer for answer, _ in drawn}) == len(listed):
            break
    else:
        return None
    args = {name: answer for name, (answer, _) in zip(listed, drawn)}
    surfaces = ["".join(text for text, _ in value_segs) for _, value_segs in drawn]
    action = imperative(spec.description, spec.name) if rng.random() < 0.75 else words_of(spec.name)
    before, after = rng.choice(phraser.frames).format(a="\0").split("\0")
    segs = [[before + action + rng.choice(OPENERS), False], [coordinate(rng, surfaces, phraser.d), True]]
    rest = [k for k in order if k in spec.props and k not in listed and statable(k, spec.props[k])
            and (k in spec.parameters.get("required", []) or rng.random() < OPTIONAL_P)]
    for name in rest:
        s, args[name] = phraser.mention(rng, spec, name, spec.props[name])
        joint = rng.choice([", ", " and ", ", ", "; "])
        if s and joint.strip() and s[0][0].startswith(joint.strip() + " "):
            joint = ", "  # not "and and the fields"
        segs += [[joint, False], *s]
    segs.append([after, False])
    return segs, {k: args[k] for k in order if k in args}
