"""Grounding at inference: argument values come from the request.

Copy bias: nudging argument values toward spans of the request while decoding under the grammar.

Nine in ten argument values are copied from the request word for word (90% of strings, 86% of numbers in
the held-out splits), and the small model's commonest error is a value that is almost copied ("Oslo" ->
"O boat", 5 -> 53). Where a value is being written, the tokens among the model's top few that keep it a
span of the request (starting at a word start, ending at a word end when the token closes it) get a fixed
bonus on their logits. It is a nudge, not a rule: a value the request words differently (a date, a
converted unit) is still written when the model is confident. Bytes throughout, case-sensitive.
After decoding, `ground_calls` holds each call to the rules teacher data is vetted with.
"""
from __future__ import annotations

import re

import torch

from needle.data.format import compact
from needle.data.grounding import meridiem_fixed, schema_constants, ungrounded_values
from needle.data.schema import Tool, call_problems
from needle.infer.cues import query_numbers

_QUOTE, _BACKSLASH = 0x22, 0x5C
_OPEN, _CLOSE = (0x7B, 0x5B), (0x7D, 0x5D)  # { [ and } ]
_OBJ, _ARR, _COMMA, _COLON = 0x7B, 0x5B, 0x2C, 0x3A
_NUMBER_TAIL = re.compile(rb"-?[0-9][0-9.eE+-]*$|-$")
_NUMBER_CHARS = re.compile(rb"[0-9.eE+-]*")
_ANSWER_NUMBER = re.compile(rb"(?<=[:\[,])(-?[0-9][0-9.eE+-]*)(?=[,}\]])")
ARGUMENT_DEPTH = 3  # '[' of the answer, '{' of a call, '{' of its arguments
COPY_TOP_K = 8  # the copy bias looks at the model's top few tokens only
LOOP_TIMES, MAX_LOOP_UNIT = 4, 16  # a string value ending in the same bytes this many times over is in a loop


def open_value(text: bytes) -> tuple[str, bytes] | None:
    """What the compact JSON answer `text` is in the middle of writing, inside a call's arguments:
    ("string", content so far), ("number", digits so far), ("start", b"") where a value begins, or None."""
    stack, in_str, escaped, start, is_key, prev = [], False, False, 0, False, 0
    for i, c in enumerate(text):
        if in_str:
            if escaped:
                escaped = False
            elif c == _BACKSLASH:
                escaped = True
            elif c == _QUOTE:
                in_str, prev = False, c
            continue
        if c == _QUOTE:
            in_str, start, is_key = True, i + 1, bool(stack) and stack[-1] == _OBJ and prev in (_OBJ, _COMMA)
        elif c in _OPEN:
            stack.append(c)
        elif c in _CLOSE and stack:
            stack.pop()
        prev = c
    if len(stack) < ARGUMENT_DEPTH:
        return None
    if in_str:
        return None if is_key else ("string", text[start:])
    number = _NUMBER_TAIL.search(text)
    if number and number.start() > 0 and text[number.start() - 1] in (_COLON, _ARR, _COMMA):
        return "number", number.group()
    if text and (text[-1] == _COLON or (text[-1] in (_ARR, _COMMA) and stack[-1] == _ARR)):
        return "start", b""
    return None


def _is_word(byte: int) -> bool:
    return byte >= 0x80 or chr(byte).isalnum()


def _string_span(value: bytes, closes: bool, query: bytes) -> bool:
    """value occurs in the query starting at a word start (and, when it closes, ending at a word end)."""
    if not value or _BACKSLASH in value:
        return False
    at = query.find(value)
    while at >= 0:
        end = at + len(value)
        if (at == 0 or not _is_word(query[at - 1])) and (not closes or end == len(query) or not _is_word(query[end])):
            return True
        at = query.find(value, at + 1)
    return False


def _number_span(value: bytes, closes: bool, query: bytes, used: set[bytes],
                 allowed: set[bytes] | None = None) -> bool:
    """value begins (or, when it closes, is) a number of the query not yet used as a value of the answer (and,
    given `allowed`, one of those: needle/infer/cues.py)."""
    return bool(value) and any(whole.startswith(value) and (not closes or whole == value) and whole not in used
               and (allowed is None or whole in allowed) for whole in query_numbers(query))


def used_numbers(text: bytes) -> set[bytes]:
    """The numbers the answer so far has written as complete values."""
    return set(_ANSWER_NUMBER.findall(text))


def continues_span(state: tuple[str, bytes], piece: bytes, query: bytes, used: set[bytes] = frozenset(),
                   allowed: set[bytes] | None = None) -> bool:
    """True when appending token bytes `piece` keeps the value being written a span of the query (a number,
    one of `allowed` when given)."""
    kind, so_far = state
    if kind == "start":
        if piece[:1] == b'"':
            kind, piece = "string", piece[1:]
        elif piece[:1].isdigit() or piece[:1] == b"-":
            kind = "number"
        else:
            return False
    if kind == "string":
        closes = _QUOTE in piece
        return _string_span(so_far + piece.split(b'"', 1)[0], closes, query)
    digits = _NUMBER_CHARS.match(piece).group()
    return _number_span(so_far + digits, len(digits) < len(piece), query, used, allowed)


def copy_biased_choice(logits: torch.Tensor, candidates: torch.Tensor, state, query: bytes,
                       pieces: list[bytes], bonus: float, used: set[bytes] = frozenset(), top_k: int = COPY_TOP_K,
                       allowed: set[bytes] | None = None) -> int:
    """The chosen position in `logits` (one row over `candidates`, masked with -inf): the argmax after adding
    `bonus` to those of the top_k tokens that continue a span of the query. Tokens are tried likeliest first,
    and only while `bonus` could still lift one above the likeliest. In a string, a choice that would make the
    value end in a loop (`repeats`) gives way to the likeliest of the top_k that does not."""
    k = min(top_k, int(torch.isfinite(logits).sum()))
    if k <= 1:
        return int(logits.argmax())
    values, positions = logits.topk(k)
    values, positions = values.tolist(), positions.tolist()
    choice = positions[0]
    for i, (value, position) in enumerate(zip(values, positions)):
        if i and value + bonus <= values[0]:
            break
        if continues_span(state, pieces[int(candidates[position])], query, used, allowed):
            choice = position
            break
    if not _loops(state, pieces[int(candidates[choice])], query):
        return choice
    return next((p for p in positions if not _loops(state, pieces[int(candidates[p])], query)), choice)


def _loops(state: tuple[str, bytes], piece: bytes, query: bytes) -> bool:
    """Whether appending token bytes `piece` makes the string value being written end in a loop (`repeats`)."""
    return state[0] == "string" and repeats(state[1] + piece.split(b'"', 1)[0], query)


def repeats(value: bytes, query: bytes) -> bool:
    """True when a string value ends in a loop the request does not have: the same 1..MAX_LOOP_UNIT bytes (not all
    blank) LOOP_TIMES times in a row ("the e e e e", "# # # # ", "0000"), that run not in the request."""
    for size in range(1, min(MAX_LOOP_UNIT, len(value) // LOOP_TIMES) + 1):
        run = value[-size:] * LOOP_TIMES
        if run.strip() and value.endswith(run) and run not in query:
            return True
    return False


def _meridiem(value, query: str, where: str, notes: list[str]):
    if isinstance(value, str):
        if (fixed := meridiem_fixed(value, query)) is not None:
            notes.append(f"{where}: {compact(value)} -> {compact(fixed)}, the half of the day the request names")
            return fixed
    elif isinstance(value, dict):
        return {k: _meridiem(v, query, f"{where}.{k}", notes) for k, v in value.items()}
    elif isinstance(value, list):
        return [_meridiem(v, query, where, notes) for v in value]
    return value


def fix_meridiem(calls: list[dict], tools: list[Tool], query: str) -> tuple[list[dict], list[str]]:
    """The calls with each clock time that names the other half of the day from the request's ('10:30' for
    "10:30p.m.") set to the request's (`meridiem_fixed`); grounding would drop them. Not where that breaks the
    call's schema (a 12-hour pattern). Returns the calls and a warning for each change."""
    out, notes = [], []
    for call in calls:
        mine: list[str] = []
        fixed = ({**call, "arguments": _meridiem(call["arguments"], query, f"{call.get('name')}'s arguments", mine)}
                 if isinstance(call.get("arguments"), dict) else call)
        if mine and call_problems([fixed], tools) and not call_problems([call], tools):
            fixed, mine = call, []
        out.append(fixed)
        notes += mine
    return out, notes


def ground_calls(calls: list[dict], tools: list[Tool], query: str) -> tuple[list[dict], list[str]]:
    """The calls whose values the request contains, and a warning for everything left out.

    The rules are those teacher data is vetted with (needle/data/grounding.py: values read off the request;
    enum values, booleans, dates and number words count). An optional argument the request does not contain
    is dropped (the small model adds them with invented values: `set_timer {"minutes": 5, "label":
    "flight"}`); a call whose required argument the request does not contain is not made at all (mostly a
    lone unrelated tool called with made-up values, where `[]` was right)."""
    schemas = {t.name: t.parameters for t in tools}
    out, warnings = [], []
    for call in calls:
        schema, args = schemas.get(call.get("name")), call.get("arguments")
        if not isinstance(schema, dict) or not isinstance(args, dict):
            out.append(call)
            continue
        required, props = set(schema.get("required") or []), schema.get("properties") or {}
        absent = {k: v for k, v in args.items() if ungrounded_values({k: v}, query, props.get(k) or {})}
        if missing := [k for k in absent if k in required]:
            warnings.append(f"dropped the call to {call['name']}: its required "
                            + ", ".join(f"{k}={compact(absent[k])}" for k in missing) + " not in the request")
            continue
        warnings += [f"dropped {call['name']}'s optional argument {k}={compact(v)}: not in the request"
                     for k, v in absent.items()]
        kept = {k: _trimmed(v, schema_constants(props.get(k) or {})) for k, v in args.items() if k not in absent}
        warnings += [f"trimmed the spaces around {call['name']}'s {k}={compact(args[k])}"
                     for k, v in kept.items() if v != args[k]]
        out.append({**call, "arguments": kept})
    return out, warnings


def _trimmed(value, constants: set[str]):
    """The value with whitespace stripped from the ends of its strings (grounding ignores it, and the model
    sometimes runs on with spaces after a copied name: "Sam's      "), schema constants left as they are."""
    if isinstance(value, str):
        return value if value in constants else value.strip()
    if isinstance(value, list):
        return [_trimmed(v, constants) for v in value]
    if isinstance(value, dict):
        return {k: _trimmed(v, constants) for k, v in value.items()}
    return value
