"""Slot cues: the argument a number of the request belongs to, where the request names it ("a base of 10 units
and height of 5": the small model alone writes base 5, height 10). A number is cued to an argument when a run
of the argument name's words stands right before it (through at most two linking words: "of", "is", "=") or
right after it ("45 minutes"); before beats after, more words beat fewer, a tie cues nothing.
Where a tool has two or more numeric arguments the request does not name ("the gcd of 36 and 48"), its
numbers go in the order the request gives them: each such argument takes the first standalone number left.
Also optional enum arguments whose value the request names, filled in where the model left them out, and string
values moved to the argument the request names beside them.
"""
from __future__ import annotations

import functools
import re

from needle.data.format import compact
from needle.data.grounding import schema_types
from needle.data.respell import words
from needle.data.schema import Tool, value_validator

# A number of the request; a leading '-' is its sign unless a letter or digit stands before it ("1-3").
NUMBER = re.compile(r"(?:(?<![0-9A-Za-z])-)?(?<![0-9.])(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)")
_TOKEN = re.compile(NUMBER.pattern + r"|[^\W\d_]+")
LINKS = frozenset({"of", "is", "are", "to", "at", "as", "be", "by", "equals", "equal", "was", "about"})
MAX_LINKS = 2


def stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def key_words(key: str) -> set[str]:
    return {stem(w) for w in words(key) if not w.isdigit()}


def _run(tokens: list[str], start: int, step: int, key: set[str]) -> int:
    """How many consecutive tokens from `start` (walking by `step`) are words of the key."""
    n, i = 0, start
    while 0 <= i < len(tokens) and stem(tokens[i]) in key:
        n, i = n + 1, i + step
    return n


def number_cues(query: str, keys: list[str]) -> dict[str, set[bytes]]:
    """For each key that the request names beside a number, those numbers (as the request writes them)."""
    by_key = {k: w for k in keys if (w := key_words(k))}
    tokens = [m.group().lower() for m in _TOKEN.finditer(query)]
    cues: dict[str, set[bytes]] = {}
    for i, token in enumerate(tokens):
        if not NUMBER.fullmatch(token):
            continue
        before = i - 1
        while before >= 0 and i - 1 - before < MAX_LINKS and tokens[before] in LINKS:
            before -= 1
        scores = {}
        for key, kw in by_key.items():
            preceding, following = _run(tokens, before, -1, kw), _run(tokens, i + 1, 1, kw)
            if preceding or following:
                scores[key] = (preceding, 1) if preceding else (following, 0)  # more words, then before
        if (winner := _sole_best(scores)) is not None:
            cues.setdefault(winner, set()).add(token.encode())
    return cues


def _sole_best(scores: dict[str, tuple[int, int]]) -> str | None:
    """The key with the highest (words, before) score, or None when there is none or a tie."""
    if not scores:
        return None
    best = max(scores.values())
    winners = [k for k, s in scores.items() if s == best]
    return winners[0] if len(winners) == 1 else None


# Between an argument's name and a string value the request gives it: "the from account brokerage", "tgt set to
# invoice", "credit card as the account"; at most MAX_STRING_LINKS of them.
STRING_LINKS = LINKS | {"the", "a", "an", "set", "for", "with", "using", "named", "called", "should"}
MAX_STRING_LINKS = 3
WORD = re.compile(r"[^\W_]+")


def _string_runs(query: str, value: str, keys: list[str]) -> dict[str, tuple[int, int, bool]]:
    """For each key the request names beside `value` (its first occurrence, any case): the run of the key's words
    right before it and right after it, through at most MAX_STRING_LINKS linking words, and whether the run before
    starts the request; none when the value is not in the request."""
    at = query.casefold().find(value.casefold())
    if at < 0:
        return {}
    before = [m.group().lower() for m in WORD.finditer(query[:at])][::-1]
    after = [m.group().lower() for m in WORD.finditer(query[at + len(value):])]
    runs = {}
    for key in keys:
        if not (kw := key_words(key)):
            continue
        found = []
        for side in (before, after):
            i = 0
            while i < min(len(side), MAX_STRING_LINKS) and side[i] in STRING_LINKS and stem(side[i]) not in kw:
                i += 1
            found.append((n := _run(side, i, 1, kw), i + n))
        if found[0][0] or found[1][0]:
            runs[key] = (found[0][0], found[1][0], found[0][1] == len(before))
    return runs


def value_cue(query: str, value: str, keys: list[str]) -> str | None:
    """The one key the request names beside `value` (its first occurrence, any case): a run of the key's words
    right before it or right after it, through at most MAX_STRING_LINKS linking words; before beats after, more
    words beat fewer; None when no key or a tie."""
    runs = _string_runs(query, value, keys)
    return _sole_best({k: (b, 1) if b else (a, 0) for k, (b, a, _) in runs.items()})


def before_cue(query: str, value: str, keys: list[str]) -> str | None:
    """As value_cue, from the run right before the value alone, and not a run that starts the request: there the
    key's words are the request's verb ("message my sister ...": the recipient, not the message)."""
    runs = _string_runs(query, value, keys)
    return _sole_best({k: (b, 1) for k, (b, _, starts) in runs.items() if b and not starts})


def swap_cued(calls: list[dict], tools: list[Tool], query: str) -> tuple[list[dict], list[str]]:
    """The calls with string values put in the argument the request names beside them (`value_cue`), where the
    model wrote them in another ("for project slug concert, analysis slug is dinner": project_slug "dinner",
    analysis_slug "concert"). Value A, written as argument a and cued to argument b, swaps with b's value B when
    B is cued to a, or when B is cued to nothing, stands in the request and A's cue is the run of words right
    before it (`before_cue`). Where b is not in the call and a is optional, A moves to b when that cue is right
    before it. Only where the values are valid for their new arguments' schemas. Returns the calls and a warning
    for each change."""
    schemas = {t.name: t.parameters for t in tools}
    out, notes = [], []
    for call in calls:
        schema, args = schemas.get(call.get("name")) or {}, call.get("arguments")
        props = schema.get("properties")
        if not isinstance(args, dict) or not isinstance(props, dict):
            out.append(call)
            continue
        args, keys, done = dict(args), list(props), set()
        text = [k for k, v in args.items() if isinstance(v, str) and v.strip() and isinstance(props.get(k), dict)]
        for a in text:
            b = value_cue(query, args[a], keys)
            if b is None or b == a or {a, b} & done or not isinstance(props.get(b), dict):
                continue
            value, valid = args[a], value_validator(props[b]).is_valid
            if b in text and args[b] != value and valid(value) and value_validator(props[a]).is_valid(args[b]):
                other = value_cue(query, args[b], keys)
                if other == a or (other is None and before_cue(query, value, keys) == b
                                  and args[b].casefold() in query.casefold()):
                    args[a], args[b] = args[b], value
                    done |= {a, b}
                    notes.append(f"{call['name']}'s {a} and {b} swapped: the request names {b} beside "
                                 f"{compact(value)}")
            elif (b not in args and a not in (schema.get("required") or []) and valid(value)
                  and before_cue(query, value, keys) == b):
                args[b] = args.pop(a)
                done |= {a, b}
                notes.append(f"{call['name']}'s {a}={compact(value)} moved to {b}: the request names {b} before it")
        out.append({**call, "arguments": args})
    return out, notes


@functools.lru_cache(maxsize=256)
def query_numbers(query: bytes) -> list[bytes]:
    """The request's numbers, signed where a '-' is their sign. Cached (the copy bias asks for every candidate
    token of every decoding step), so the list is shared: read it, do not change it."""
    return [m.group().encode() for m in NUMBER.finditer(query.decode("utf-8", "replace"))]


_RETRACTED = re.compile(r"\W*(?:(?:uh|um|er)\W+)?(?:no|actually|sorry|wait|i mean|make that|rather)\b", re.IGNORECASE)


def standalone_numbers(query: bytes) -> list[bytes]:
    """The request's numbers that stand alone: not part of a time ("22:30"), a date ("12/05", "2026-01-14") or a
    code ("D7", "5I-17404"), nor taken back ("45, actually 65")."""
    return _standalone(query.decode("utf-8", "replace"))


@functools.lru_cache(maxsize=256)
def _standalone(q: str) -> list[bytes]:
    out = []
    for m in NUMBER.finditer(q):
        before, after, next_ = q[m.start() - 1:m.start()], q[m.end():m.end() + 1], q[m.end() + 1:m.end() + 2]
        if not (before.isalpha() or before in (":", "/", "-") or after in (":", "/")
                or (after == "-" and next_.isdigit()) or _RETRACTED.match(q, m.end())):
            out.append(m.group().encode())
    return out


def positional_keys(properties: dict, cued: dict[str, set[bytes]]) -> frozenset[str]:
    """A tool's numeric arguments the request names no number for, when there are two or more of them (else
    none): the arguments whose numbers go in the request's order."""
    keys = frozenset(k for k, p in properties.items()
                     if k not in cued and isinstance(p, dict) and schema_types(p) & {"integer", "number"})
    return keys if len(keys) >= 2 else frozenset()


_CALL_NAME = re.compile(rb'\{"name":"((?:[^"\\]|\\.)*)"')
_OPEN_KEY = re.compile(rb'"((?:[^"\\]|\\.)*)":-?[0-9.eE+-]*$')


def numbers_for_slot(text: bytes, query: bytes, cues: dict[str, dict[str, set[bytes]]],
                     used: set[bytes] = frozenset(), positional: dict[str, frozenset[str]] | None = None,
                     ) -> tuple[set[bytes] | None, bool]:
    """The request's numbers the argument being written may take, given `cues` (tool name -> number_cues), and
    whether they are cued to it: (those cued to it and not `used` yet, True); for one of the tool's
    `positional` arguments (tool name -> positional_keys), the first standalone number of the request cued to
    none of its arguments and not used, when two or more are left (True); else (those cued to none of the
    tool's arguments, False); (None, False) when that leaves none or nothing is cued. `text` is the answer so
    far, ending inside a number value or at its start."""
    names, key = _CALL_NAME.findall(text), _OPEN_KEY.search(text)
    if not names or not key:
        return None, False
    name, key = names[-1].decode("utf-8", "replace"), key.group(1).decode("utf-8", "replace")
    tool = cues.get(name) or {}
    if mine := tool.get(key, set()) - used:
        return mine, True
    taken = set().union(*tool.values())
    if positional and key in positional.get(name, ()):
        free = [n for n in standalone_numbers(query) if n not in taken and n not in used]
        if len(free) >= 2:
            return {free[0]}, True
    if not tool:
        return None, False
    return {n for n in query_numbers(query) if n not in taken} or None, False


def _named(value: str, query: str) -> bool:
    return len(value) >= 2 and re.search(r"(?<!\w)" + re.escape(value) + r"(?!\w)", query, re.IGNORECASE) is not None


def lone_calls(calls: list[dict], tools: list[Tool]):
    """Each call with its tool's parameter schema where the rules that fill in or change a call's values may touch
    it (a tool offered, arguments that are an object, a tool the answer calls once: which call would a value be
    for?), else with None."""
    schemas, names = {t.name: t.parameters for t in tools}, [c.get("name") for c in calls]
    for call in calls:
        schema = schemas.get(call.get("name"))
        fits = isinstance(schema, dict) and isinstance(call.get("arguments"), dict) and names.count(call["name"]) == 1
        yield call, schema if fits else None


def fill_named_enums(calls: list[dict], tools: list[Tool], query: str) -> tuple[list[dict], list[str]]:
    """The calls with each optional enum argument they leave out filled in where the request names exactly one
    of its values word for word (any case): "425 degrees celsius, upper oven" -> unit "celsius", oven "upper".
    Not for a tool called more than once (which call is it for?), nor a value the call already uses or that
    names a value of two of the tool's arguments. Returns the calls and a warning for each argument added."""
    out, warnings = [], []
    for call, schema in lone_calls(calls, tools):
        if schema is None:
            out.append(call)
            continue
        args = call["arguments"]
        used = {v.lower() for v in args.values() if isinstance(v, str)}
        found = {}
        for key, prop in (schema.get("properties") or {}).items():
            enum = prop.get("enum") if isinstance(prop, dict) else None
            if key not in args and isinstance(enum, list) and all(isinstance(e, str) for e in enum):
                if len(named := [e for e in enum if _named(e, query)]) == 1 and named[0].lower() not in used:
                    found[key] = named[0]
        values = [v.lower() for v in found.values()]
        found = {k: v for k, v in found.items() if values.count(v.lower()) == 1}
        warnings += [f"added {call['name']}'s optional argument {k}={compact(v)}: the request names it"
                     for k, v in found.items()]
        out.append({**call, "arguments": {**args, **found}})
    return out, warnings


def _as_number(token: str, prop: dict) -> int | float | None:
    """A number of the request as a value for `prop`: an int where it is written whole, else a float where the
    schema takes any number; None where it does not fit the schema's type."""
    types = schema_types(prop)
    if "." not in token:
        return int(token) if types & {"integer", "number"} else None
    return float(token) if "number" in types else None


def fill_cued_numbers(calls: list[dict], tools: list[Tool], query: str) -> tuple[list[dict], list[str]]:
    """The calls with each optional numeric argument they leave out filled in where the request names it beside
    exactly one number (`number_cues`) that no value of the answer uses ("older than months is 24" ->
    `older_than_months: 24`), and where that number is valid for it. Not for a tool called more than once. Returns
    the calls and a warning for each argument added."""
    used = {float(v) for c in calls if isinstance(c.get("arguments"), dict) for v in c["arguments"].values()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
    out, notes = [], []
    for call, schema in lone_calls(calls, tools):
        if schema is None:
            out.append(call)
            continue
        props, required, args = schema.get("properties") or {}, schema.get("required") or [], dict(call["arguments"])
        for key, tokens in number_cues(query, list(props)).items():
            prop = props.get(key)
            if key in args or key in required or not isinstance(prop, dict):
                continue
            free = {t.decode() for t in tokens if float(t) not in used}
            value = _as_number(free.pop(), prop) if len(free) == 1 else None
            if value is not None and value_validator(prop).is_valid(value):
                args[key] = value
                used.add(float(value))
                notes.append(f"added {call['name']}'s optional argument {key}={compact(value)}: the request names it "
                             f"beside the number")
        out.append({**call, "arguments": args})
    return out, notes
