"""Vetting a teacher's reply: pull JSON out of free text, coerce safe numerals, check every argument value.

Grounding: strings must appear in the query (case-insensitive, whitespace-normalised; phone numbers
digits-only); numbers as digits or number words up to ninety-nine; enum/const values, booleans and null
may be implied. Dates and times are lenient: the ISO form or an obvious surface form ("May 3", "3rd of
May", "3/5", "3:30 pm", "noon") counts, the year is never checked, relative words ("tomorrow") don't.
"""
from __future__ import annotations

import json
import re
from typing import Any

from needle.data.schema import MAX_QUERY_CHARS, Call, DataError, Tool, parse_calls, validate_call

_WS = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^\w\s]")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})
_FENCE = re.compile(r"```[\w-]*[ \t]*\n?(.*?)```", re.DOTALL)
_OPENER = re.compile(r"[\[{]")
_TRAILING_COMMA = re.compile(r",(\s*[\]}])")
_DECODER = json.JSONDecoder()
_LIST_KEYS = ("examples", "items", "data", "results", "paraphrases", "queries")

_PHONE = re.compile(r"\+?[\d\s().-]{7,}")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::\d{2}(?:\.\d+)?)?")
_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(?:Z|[+-]\d{2}:?\d{2})?")
_MONTHS = ["jan(?:uary)?", "feb(?:ruary)?", "mar(?:ch)?", "apr(?:il)?", "may", "june?", "july?", "aug(?:ust)?",
           "sep(?:t|tember)?", "oct(?:ober)?", "nov(?:ember)?", "dec(?:ember)?"]
_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
          "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


class Rejected(ValueError):
    """One teacher item failed vetting; `reason` is the counted rejection reason."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


# ---- text normalisation -------------------------------------------------------------------------

def normalise_text(text: str) -> str:
    return _WS.sub(" ", text.translate(_QUOTES).casefold()).strip()


def query_key(query: str) -> str:
    """The dedup key: lowercase, punctuation stripped, whitespace collapsed."""
    return _WS.sub(" ", _NON_WORD.sub(" ", normalise_text(query))).strip()


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


# ---- JSON out of free text ----------------------------------------------------------------------

def parse_reply(text: str) -> Any:
    """The first JSON value in a reply (inside a code fence if any), tolerating prose and trailing commas."""
    for body in (*_FENCE.findall(text), text):
        start = _OPENER.search(body)
        if start is None:
            continue
        for variant in (body[start.start():], _TRAILING_COMMA.sub(r"\1", body[start.start():])):
            try:
                return _DECODER.raw_decode(variant)[0]
            except json.JSONDecodeError:
                continue
    return None


def _as_items(value: Any, first_key: str) -> list | None:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if first_key in value:
            return [value]
        for key in (*_LIST_KEYS, *value):
            if isinstance(value.get(key), list):
                return value[key]
    return None


def salvage_items(text: str, first_key: str, start: int = 0) -> tuple[list, int]:
    """Decode each `{"<first_key>": ...}` object on its own, so one broken item doesn't sink the rest."""
    starts = [m.start() for m in re.finditer(r'\{\s*"' + re.escape(first_key) + r'"\s*:', text[start:])]
    items, bad = [], 0
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text) - start
        chunk = _TRAILING_COMMA.sub(r"\1", text[start + s:start + end])
        try:
            items.append(_DECODER.raw_decode(chunk)[0])
        except json.JSONDecodeError:
            bad += 1
    return items, (bad if starts else 1)


def extract_items(text: str, first_key: str = "query") -> tuple[list, int]:
    """(items, number of unreadable items) from a reply holding a JSON list, or an object wrapping one."""
    items = _as_items(parse_reply(text), first_key)
    return (items, 0) if items is not None else salvage_items(text, first_key)


def extract_invented(text: str) -> tuple[Any, list, int]:
    """(raw tools, example items, unreadable items) from a reply {"tools": [...], "examples": [...]}."""
    value = parse_reply(text)
    if isinstance(value, dict) and isinstance(value.get("examples"), list):
        return value.get("tools"), value["examples"], 0
    m = re.search(r'"tools"\s*:\s*\[', text)
    if m is None:
        return None, [], 1
    try:
        tools, end = _DECODER.raw_decode(text, m.end() - 1)
    except json.JSONDecodeError:
        return None, [], 1
    items, bad = salvage_items(text, "query", start=end)
    return tools, items, bad


# ---- coercion and grounding ---------------------------------------------------------------------

def schema_types(schema: dict) -> set:
    """The JSON types a schema allows: {"integer"} for "integer", {"integer", "null"} for ["integer", "null"]."""
    t = schema.get("type")
    return set(t) if isinstance(t, list) else {t} if t else set()


def coerce_numerals(value: Any, schema: Any) -> Any:
    """"5" -> 5 where the schema wants an integer/number (and not a string) and the string is a plain numeral."""
    if not isinstance(schema, dict):
        return value
    types = schema_types(schema)
    if isinstance(value, str) and "string" not in types:
        if types & {"integer", "number"} and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        if "number" in types and re.fullmatch(r"-?\d+\.\d+", value.strip()):
            return float(value)
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        props = schema["properties"]
        return {k: coerce_numerals(v, props.get(k)) for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [coerce_numerals(v, schema["items"]) for v in value]
    return value


def schema_constants(schema: Any) -> set[str]:
    """Every string enum/const value anywhere in a schema: these may be implied rather than quoted."""
    out: set[str] = set()
    if isinstance(schema, dict):
        out.update(v for v in schema.get("enum", []) if isinstance(v, str))
        if isinstance(schema.get("const"), str):
            out.add(schema["const"])
        for v in schema.values():
            out |= schema_constants(v)
    elif isinstance(schema, list):
        for v in schema:
            out |= schema_constants(v)
    return out


def _number_words(n: int) -> str:
    if n < 20:
        return _UNITS[n]
    tens, unit = divmod(n, 10)
    return _TENS[tens - 2] + ("" if unit == 0 else f"[- ]?{_UNITS[unit]}")


def _number_grounded(value: float, query: str) -> bool:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", query)  # 1,000 -> 1000
    form = re.escape(str(abs(value))) + (r"0*" if isinstance(value, float) else "")
    if re.search(rf"(?<![\d.]){form}(?!\d|\.\d)", text):
        return True
    return isinstance(value, int) and abs(value) < 100 and re.search(rf"\b{_number_words(abs(value))}\b", text) is not None


def _date_grounded(year: str, month: str, day: str, query: str) -> bool:
    if f"{year}-{month}-{day}" in query:
        return True
    m, d = int(month), int(day)
    if not (1 <= m <= 12 and 1 <= d <= 31):  # a model can write "2024-13-05": no such date is in any request
        return False
    name, day_re = _MONTHS[m - 1], rf"0?{d}(?:st|nd|rd|th)?"
    patterns = (rf"\b{day_re}\s+(?:of\s+)?{name}\b", rf"\b{name}\.?\s+(?:the\s+)?{day_re}\b",
                rf"(?<!\d)0?{d}[/.]0?{m}(?!\d)", rf"(?<!\d)0?{m}[/.]0?{d}(?!\d)")
    return any(re.search(p, query) for p in patterns)


def _time_grounded(hour: int, minute: int, query: str) -> bool:
    h12 = hour % 12 or 12
    ampm = r"\s*(?:am|pm|a\.m\.|p\.m\.)"
    patterns = [rf"(?<!\d)0?{hour}:{minute:02d}(?!\d)", rf"(?<!\d){h12}[:.]{minute:02d}(?!\d)"]
    if minute == 0:
        patterns += [rf"(?<!\d){h12}{ampm}", rf"(?<!\d){h12}\s*o'?clock"]
        patterns += [r"\bnoon\b"] if hour == 12 else [r"\bmidnight\b"] if hour == 0 else []
    return any(re.search(p, query) for p in patterns)


_AMPM = re.compile(r"(?<!\d)(\d{1,2})(?::(\d{2}))?\s*([ap])\.?\s?m\b")


def _meridiem_conflict(hour: int, minute: int, query: str) -> bool:
    """'20:00' for "at 8 am": the query names this clock time only with the other half of the day."""
    seen = False
    for hh, mm, half in _AMPM.findall(query):
        h12, m = int(hh), int(mm or 0)
        if m == minute and 1 <= h12 <= 12 and h12 % 12 == hour % 12:
            if h12 % 12 + (12 if half == "p" else 0) == hour:
                return False
            seen = True
    return seen


def meridiem_fixed(value: str, query: str) -> str | None:
    """The clock time the request names where `value` names the other half of the day ('10:30' for "10:30 p.m."
    -> '22:30', '17:15' for "5:15 a.m." -> '05:15'); None for any other value."""
    m = _TIME.fullmatch(value)
    if not m or int(m.group(1)) >= 24:  # most values are no clock time: the request is not normalised for them
        return None
    q = normalise_text(query)
    if not _meridiem_conflict(int(m.group(1)), int(m.group(2)), q):
        return None
    other = (int(m.group(1)) + 12) % 24
    if _meridiem_conflict(other, int(m.group(2)), q):
        return None
    return f"{other:0{len(m.group(1))}d}" + value[m.end(1):]


def _string_grounded(value: str, query: str) -> bool:
    v = value.strip()
    if v.isdigit():  # "3" is not in "rating 13"
        return re.search(rf"(?<!\d){re.escape(v)}(?!\d)", query) is not None
    if (m := _TIME.fullmatch(v)) and _meridiem_conflict(int(m.group(1)), int(m.group(2)), query):
        return False
    if normalise_text(value) in query:
        return True
    if m := _DATETIME.fullmatch(v):
        return _string_grounded(m.group(1), query) and _string_grounded(m.group(2), query)
    if m := _DATE.fullmatch(v):
        return _date_grounded(*m.groups(), query)
    if m := _TIME.fullmatch(v):
        return int(m.group(1)) < 24 and _time_grounded(int(m.group(1)), int(m.group(2)), query)
    if _PHONE.fullmatch(v) and len(_digits(v)) >= 7:
        return _digits(v) in _digits(query)
    return False


def is_grounded(value: Any, query: str, constants: set[str] = frozenset()) -> bool:
    """Whether a scalar argument value can be read off the (raw) query."""
    if value is None or isinstance(value, bool) or (isinstance(value, str) and value in constants):
        return True
    q = normalise_text(query)
    if isinstance(value, (int, float)):
        return _number_grounded(value, q)
    if isinstance(value, str):
        return _string_grounded(value, q)
    return False


def leaf_values(value: Any) -> list:
    """The scalar values inside an argument dict (nested objects and lists flattened; keys skipped)."""
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in leaf_values(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in leaf_values(v)]
    return [value]


def ungrounded_values(arguments: dict, query: str, schema: dict) -> list:
    constants = schema_constants(schema)
    return [v for v in leaf_values(arguments) if not is_grounded(v, query, constants)]


# ---- one teacher example ------------------------------------------------------------------------

def _call_type(raw: Any, n_calls: int, call_counts: dict) -> str:
    if isinstance(raw, str) and raw in call_counts:
        return raw
    return "none" if n_calls == 0 else "single" if n_calls == 1 else "parallel"  # unnamed: infer it


def check_query(query: Any) -> str:
    if not isinstance(query, str):
        raise Rejected("bad_json", "query is not a string")
    if not query.strip() or not query_key(query):
        raise Rejected("empty_query")
    if len(query) > MAX_QUERY_CHARS:
        raise Rejected("too_long", f"{len(query)} characters")
    return query


def vet_example(item: Any, tools: list[Tool], call_counts: dict) -> tuple[str, str, list[Call]]:
    """(query, call_type, calls) for a sound teacher item, else Rejected with the reason.

    call_counts maps call type -> (min calls, max calls or None); "no_tools" items are checked against
    no tools at all. Arguments get safe numeral coercion before schema validation.
    """
    if not isinstance(item, dict) or "answers" not in item:
        raise Rejected("bad_json", "not an object with query and answers")
    query = check_query(item.get("query"))
    try:
        calls = parse_calls(item["answers"])
    except DataError as e:
        raise Rejected("bad_json", str(e)) from None
    call_type = _call_type(item.get("call_type"), len(calls), call_counts)
    lo, hi = call_counts.get(call_type, (1, None))
    if len(calls) < lo or (hi is not None and len(calls) > hi):
        raise Rejected("wrong_answer_for_call_type", f"{call_type} with {len(calls)} calls")
    offered = {t.name: t for t in ([] if call_type == "no_tools" else tools)}
    out = []
    for call in calls:
        tool = offered.get(call.name)
        if tool is None:
            raise Rejected("unknown_tool", call.name)
        call = Call(call.name, coerce_numerals(call.arguments, tool.parameters))
        try:
            validate_call(call, [tool])
        except DataError as e:
            raise Rejected("invalid_arguments", str(e)) from None
        bad = ungrounded_values(call.arguments, query, tool.parameters)
        if bad:
            raise Rejected("ungrounded_value", repr(bad[0]))
        out.append(call)
    return query, call_type, out
