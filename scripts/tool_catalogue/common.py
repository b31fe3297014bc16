"""Shared pieces of the catalogue converters: text cleaning, name checks and scalar JSON Schema building.

A converter raises `Skip(reason)` for anything it will not turn into a tool (or a property); the caller
counts the reason. Cleaning is conservative: markup is stripped, and a description that still looks like
markup afterwards is rejected rather than repaired.
"""
from __future__ import annotations

import html
import math
import re

MAX_DESC = 300
MAX_PARAM_DESC = 200
MAX_ENUM = 30
MAX_PARAMS = 8
TOOL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
PARAM_NAME = re.compile(r"^[A-Za-z_$][A-Za-z0-9_.-]{0,63}$")
KEEP_FORMATS = {"date", "date-time", "email", "uri", "time"}
SCALARS = {"string", "integer", "number", "boolean"}

_TAG = re.compile(r"<[^>]{0,400}>")
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_EMPH = re.compile(r"(\*\*|__|`)")
_HEADING = re.compile(r"(^|\n)\s*#{1,6}\s+")
_JUNK = re.compile(r"[<>{}\[\]|\\#*`~^]|https?://|www\.|\.\.\.|--|==|\s_|_\s|\bTODO\b|\bFIXME\b|lorem ipsum",
                   re.IGNORECASE)
_ASCII_PUNCT = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                              "\u2014": "-", "\u00a0": " ", "\u2026": "..."})
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_ABBREV = re.compile(r"(\be\.g|\bi\.e|\betc|\bvs|\bInc|\bLtd|\bCorp|\bNo|\bMr|\bMrs|\bDr|\bSt|\bapprox|\b[A-Z])\.$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


class Skip(Exception):
    """Raised for an operation or property that is not converted; the message is the counted reason."""


def clean(text: object) -> str:
    """Markup-free, whitespace-collapsed text ('' for non-strings)."""
    if not isinstance(text, str):
        return ""
    text = html.unescape(text)
    text = _MD_IMAGE.sub(" ", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _HEADING.sub(r"\1", text)
    text = _TAG.sub(" ", text)
    text = _MD_EMPH.sub("", text).translate(_ASCII_PUNCT)
    return " ".join(text.split())


def _sentences(text: str) -> list[str]:
    parts: list[str] = []
    for piece in _SENTENCE_END.split(text):
        if parts and _ABBREV.search(parts[-1]):
            parts[-1] += " " + piece
        else:
            parts.append(piece)
    return parts


def _is_junk(text: str) -> bool:
    if _JUNK.search(text):
        return True
    return any(ord(c) > 0x17F for c in text)  # scripts other than Latin, emoji, box drawing ...


_FILLER = {"required.", "optional.", "output only.", "required", "optional"}
_CAVEAT = re.compile(r"^(note|notice|important|warning|caution|tbd|todo|beta|preview|experimental|this is an? "
                     r"(experimental|beta|preview|internal))\b", re.IGNORECASE)
_ASIDE = re.compile(r"^(for more|for details|for further|see |please |refer |learn more|more info)", re.IGNORECASE)


def first_sentences(text: str, limit: int, max_sentences: int = 2) -> str:
    """Leading whole sentences of cleaned text within `limit` chars ('' if even the first does not fit).

    Bare "Required." sentences and caveats ("Note: ...", "This is an experimental method.") are skipped;
    a later sentence that opens a list or a format spec (':' or ' - ') or an aside ("For more ...",
    "See ...") ends the description instead of being cut into."""
    out, count = "", 0
    for sentence in _sentences(text):
        if sentence.lower() in _FILLER or _CAVEAT.match(sentence):
            continue
        if count and (":" in sentence or " - " in sentence or _ASIDE.match(sentence)):
            break
        candidate = f"{out} {sentence}".strip()
        if len(candidate) > limit or count == max_sentences:
            break
        out, count = candidate, count + 1
    return out


def _usable(text: str, limit: int, min_words: int) -> tuple[str, str]:
    """(description, '') or ('', reason) trying two sentences, then one."""
    reason = "description too long"
    for n in (2, 1):
        desc = first_sentences(text, limit, n)
        if not desc:
            continue
        if _is_junk(desc) or desc.endswith(":"):
            reason = "markup in description"
        elif len(desc.split()) < min_words:
            reason = "description under 4 words"
        else:
            return desc, ""
    return "", reason


def tool_description(*candidates: object) -> str:
    """The first candidate giving clean leading sentences of >= 4 words; raises Skip with the reason."""
    reason = "no description"
    for raw in candidates:
        text = clean(raw)
        if not text:
            continue
        if "deprecated" in text.lower():
            raise Skip("deprecated")
        desc, reason = _usable(text, MAX_DESC, 4)
        if desc:
            return desc
    raise Skip(reason)


def trim_words(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:(") + "..."


def words_of(name: str) -> list[str]:
    return [w for w in re.split(r"[_.\-\s$]+", _CAMEL.sub(" ", name)) if w]


def describe_name(name: str) -> str:
    """A plain description made from a property name: 'petId' -> 'The pet id.'"""
    return "The " + " ".join(w.lower() for w in words_of(name)) + "."


def param_description(raw: object, name: str, required: bool) -> str:
    """First sentence of the source text, else one made from the name for required properties.
    Optional properties without a usable description raise Skip (they are dropped)."""
    text = clean(raw)
    if "deprecated" in text.lower():
        raise Skip("deprecated parameter")
    desc, _ = _usable(text, MAX_PARAM_DESC, 2)
    if not desc and text and not _is_junk(text):
        desc = trim_words(text, MAX_PARAM_DESC)  # one long clean sentence: cut at a word boundary
    if desc:
        return desc
    if required:
        return describe_name(name)
    raise Skip("undescribed parameter")


def sensible_tool_name(name: object) -> str:
    """The name if it matches TOOL_NAME and does not look machine-generated from a URL path."""
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise Skip("bad name")
    if re.match(r"(GET|POST|PUT|PATCH|DELETE|HEAD)[_-]", name):  # "GET_contactdb-lists-list_id": a URL path
        raise Skip("generated-looking name")
    words = words_of(name)
    if len(words) > 8 or any(re.fullmatch(r"v\d+|\d{3,}", w, re.IGNORECASE) for w in words):
        raise Skip("generated-looking name")
    if any(sum(c.isdigit() for c in w) >= 2 and len(w) >= 5 for w in words):
        raise Skip("generated-looking name")
    return name


def _number(value: object, typ: str) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value) and abs(value) < 1e15:
        return int(value) if typ == "integer" and float(value).is_integer() else value
    return None


def _fits(value: object, typ: str) -> bool:
    if typ == "string":
        return isinstance(value, str)
    if typ == "boolean":
        return isinstance(value, bool)
    if typ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def coerce(value: object, typ: str) -> object:
    """A source default/enum value as a JSON value of `typ`, or None when it does not convert."""
    if _fits(value, typ):
        return value
    if isinstance(value, str) and typ == "boolean" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if typ in ("integer", "number"):
        number = _number(value, typ)
        return number if number is not None and _fits(number, typ) else None
    return None


def scalar(typ: str, description: str | None = None, *, enum=None, fmt=None, minimum=None, maximum=None,
           default=None) -> dict:
    """A scalar property schema with only the values that are valid for its type."""
    if typ not in SCALARS:
        raise Skip(f"unsupported type {typ}")
    schema: dict = {"type": typ}
    if description:
        schema["description"] = description
    if enum is not None and typ != "boolean":
        values = [v for v in (coerce(e, typ) for e in enum) if v is not None]
        values = list(dict.fromkeys(values))
        if 1 <= len(values) <= MAX_ENUM and (typ != "string" or all(v.strip() for v in values)):
            schema["enum"] = values
    if typ == "string" and fmt in KEEP_FORMATS:
        schema["format"] = fmt
    if typ in ("integer", "number"):
        lo, hi = _number(minimum, typ), _number(maximum, typ)
        if lo is not None:
            schema["minimum"] = lo
        if hi is not None and (lo is None or hi >= lo):
            schema["maximum"] = hi
    value = coerce(default, typ) if default is not None else None
    if value is not None and value in schema.get("enum", [value]) and _in_range(value, schema):
        schema["default"] = value
    return schema


def _in_range(value: object, schema: dict) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return True
    return schema.get("minimum", value) <= value <= schema.get("maximum", value)


def array_of(item: dict, description: str, default=None) -> dict:
    """An array property over a scalar item schema (descriptions removed from the item)."""
    item = {k: v for k, v in item.items() if k not in ("description", "default")}
    if item.get("type") not in SCALARS:
        raise Skip("array of non-scalars")
    schema = {"type": "array", "description": description, "items": item}
    if isinstance(default, list) and default and all(_fits(v, item["type"]) for v in default):
        schema["default"] = default
    return schema


def object_schema(properties: dict, required: list[str]) -> dict:
    """The tool's parameters object; raises Skip when the property count is outside 1..MAX_PARAMS."""
    if not properties:
        raise Skip("no parameters")
    if len(properties) > MAX_PARAMS:
        raise Skip("more than 8 parameters")
    required = [r for r in dict.fromkeys(required) if r in properties]
    return {"type": "object", "properties": properties, "required": required}
