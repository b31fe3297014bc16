"""Listed values: one call per value where the request lists several for one argument.

"Find the factorial of 5, 10 and 15" wants three calls; the small model writes one (`math.factorial
{"number": 15}`) and stops. After decoding, a call whose argument value is one item of a list in the request
("5, 10 and 15", "Taylor Swift and Maroon 5", "20 minutes and 15 minutes") gets a copy for each other item
that the answer does not use yet, in the request's order. Items are numbers (with the
same unit word, if any), or runs of as many capitalised words or codes as the model's value (names: "dog food
and cat litter" is left alone, as phrases in requests are joined by "and" for many other reasons); items are
joined by commas, "and" or "&" ("or" offers a choice, not a list), and a list of words needs an "and". Arguments
whose lists are paired ("... respectively") and ranges ("between 9 and 11") are left alone.
"""
from __future__ import annotations

import re

from needle.data.format import compact
from needle.data.grounding import schema_types
from needle.data.schema import Tool
from needle.infer.cues import NUMBER

_SEP = re.compile(r"(?:\s*,\s*(?:and\s+|&\s+)?|\s+(?:and|&)\s+)")
_WORD = r"(?!I\b)[A-Z0-9][^\s,;:.!?&()\"'\u201c\u201d]*"  # a capitalised word or a code: names, not phrases
_QUOTES = "\"'\u201c\u201d\u2018\u2019"


def _item_pattern(value) -> str | None:
    """The regex of one list item shaped like the model's value: a number, or as many words."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return rf"(?P<i>{NUMBER.pattern})(?:\s+(?!and\b)(?P<u>[A-Za-z]+))?"
    if isinstance(value, str) and re.fullmatch(rf"{_WORD}(?:\s+{_WORD})*", value) and len(value) <= 60:
        n = len(value.split())
        return rf"[{_QUOTES}]?(?P<i>{_WORD}(?:\s+{_WORD}){{{n - 1}}})[{_QUOTES}]?"
    return None


def _same(item: str, value) -> bool:
    if isinstance(value, str):
        return item == value
    try:
        return float(item) == float(value)
    except ValueError:
        return False


def listed_items(query: str, value) -> list[str]:
    """The items of the request's list that holds `value` as one of its items (in the request's order), or []."""
    pattern = _item_pattern(value)
    if pattern is None:
        return []
    item = re.compile(r"(?<![\w.-])" + pattern + r"(?![\w-])")
    for start in range(len(query)):
        items, units, at, joined = [], [], start, False
        while (m := item.match(query, at)) is not None:
            items.append(m.group("i"))
            units.append(m.groupdict().get("u"))
            at = m.end()
            if joined or (s := _SEP.match(query, at)) is None:
                break
            joined = bool(re.search(r"and|&", s.group()))  # the item after "and" is the last
            at = s.end()
        if len(items) < 2 or not any(_same(i, value) for i in items):
            continue
        if re.search(r"\bbetween\s+$", query[:start], re.IGNORECASE):  # "between 9 and 11" is a range
            return []
        # words need an "and" ("Taylor Swift and Maroon 5"; "Paris, with a view" is no list), a number's unit
        # is the same for every item that has one ("5 minutes and 30 seconds" is no list), and paired lists
        # ("... 20 and 15 minutes respectively") are left alone
        if ((isinstance(value, str) and not joined) or len({u.lower() for u in units if u}) > 1
                or "respectively" in query[at:at + 40].lower()):
            return []
        return items
    return []


def _typed(item: str, value, prop: dict):
    """The item as the argument's type (None where it does not fit the schema)."""
    if isinstance(value, str):
        out = item
    else:
        integer = "integer" in schema_types(prop)
        out = float(item) if "." in item or isinstance(value, float) else int(item)
        if integer and not float(out).is_integer():
            return None
        out = int(out) if integer else out
    enum = prop.get("enum")
    return out if not isinstance(enum, list) or out in enum else None


def expand_listed(calls: list[dict], tools: list[Tool], query: str) -> tuple[list[dict], list[str]]:
    """The calls, each with copies for the other values the request lists with one of its arguments' values
    (values no call of the answer uses yet), in the request's order; and a warning for each call added."""
    schemas = {t.name: t.parameters for t in tools}
    out, warnings = [], []
    taken = {compact(v) for c in calls if isinstance(c.get("arguments"), dict) for v in c["arguments"].values()}
    for call in calls:
        schema, args = schemas.get(call.get("name")), call.get("arguments")
        props = (schema or {}).get("properties") or {}
        added = []
        for key, value in (args.items() if isinstance(args, dict) else ()):
            items = listed_items(query, value) if isinstance(props.get(key), dict) else []
            others = [_typed(i, value, props[key]) for i in items]
            fresh = [v for v in others if v is not None and compact(v) not in taken]  # a value used nowhere yet
            if fresh:
                mine = next(j for j, i in enumerate(items) if _same(i, value))
                before, after = others[:mine], others[mine + 1:]
                ordered = [v for v in before if v in fresh] + [value] + [v for v in after if v in fresh]
                added = [{**call, "arguments": {**args, key: v}} for v in ordered]
                taken |= {compact(v) for v in fresh}
                warnings += [f"added a call to {call['name']} with {key}={compact(v)}: the request lists it with "
                             f"{compact(value)}" for v in fresh]
                break
        out += added or [call]
    return out, warnings
