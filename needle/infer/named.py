"""Optional arguments and the request's words.

Optional strings the request names: an optional string argument the model left out, where the request writes
the argument's name beside a value ("using Hindi as the lang", "for zone fundraiser"), is filled in with the span
beside the name that the model rates highest as that value, when it rates it highly enough. Optional booleans the
request gives a value ("include symbols: yes", "reply all disabled") are filled in the same way, without the model.

Optional values the request does not name: the model adds optional enum and boolean arguments nobody asked for
(`set_live_captions {"enabled": true, "position": "top"}` for "I'm on a silent train and want to follow this
podcast", `"raise_to_wake": true` for "keep my watch display always on"). An optional string enum value none of
whose words (or their first four letters) the request uses is dropped, and so is an optional boolean none of whose
name's telling words the request uses; within an optional array of enum strings, each item the request does not
name, and within an optional object the same, recursively (an array or object left empty goes too). On the
1,500-request validation sample (seed 13) no such enum value was right (65 were arguments the answer should not
have, 13 wrong values, 14 in calls that should not be made), and 5 such booleans were right against 35 the answer
should not have.
"""
from __future__ import annotations

import re

from needle.data.format import compact
from needle.data.grounding import leaf_values, schema_types
from needle.data.respell import words
from needle.data.schema import Tool, value_validator
from needle.infer.cues import MAX_STRING_LINKS, STRING_LINKS, WORD, key_words, lone_calls, stem
from needle.infer.repair import EDGE, MAX_SPAN_WORDS, MIN_LOGPROB, Encoded, as_encoded, span_logprobs, value_prefix
from needle.model.model import Needle


def named_spans(query: str, key: str) -> list[str]:
    """Spans of 1..MAX_SPAN_WORDS words right after or right before a run of all the key's words in the request
    (through at most MAX_STRING_LINKS linking words), outer punctuation stripped."""
    kw = key_words(key)
    toks = list(WORD.finditer(query))
    low = [stem(m.group().lower()) for m in toks]
    n, spans = len(kw), {}
    if not kw:
        return []
    for i in range(len(toks) - n + 1):
        if set(low[i:i + n]) != kw:
            continue
        after = i + n
        while after < len(toks) and after - i - n < MAX_STRING_LINKS and low[after] in STRING_LINKS:
            after += 1
        for j in range(after, min(len(toks), after + MAX_SPAN_WORDS)):
            spans[query[toks[after].start():toks[j].end()]] = None
        before = i - 1
        while before >= 0 and i - 1 - before < MAX_STRING_LINKS and low[before] in STRING_LINKS:
            before -= 1
        for j in range(before, max(-1, before - MAX_SPAN_WORDS), -1):
            spans[query[toks[j].start():toks[before].end()]] = None
    stripped = dict.fromkeys(s.strip(EDGE) for s in spans)
    return [s for s in stripped if s and not kw & {stem(w.lower()) for w in WORD.findall(s)}]  # not the name itself


def fill_named_strings(model: Needle, tok, enc: "list[int] | Encoded", calls: list[dict], tools: list[Tool],
                       query: str, min_logprob: float = MIN_LOGPROB) -> tuple[list[dict], list[str]]:
    """The calls with each optional free string argument they leave out filled in where the request names the
    argument beside a span the model rates at least `min_logprob` as its value. Not for a tool called more than
    once. Returns the calls and a warning for each argument added."""
    schemas, notes = {t.name: t.parameters for t in tools}, []
    names = [c.get("name") for c in calls]
    calls = [dict(c, arguments=dict(c["arguments"])) if isinstance(c.get("arguments"), dict) else c for c in calls]
    for i, call in enumerate(calls):
        schema, args = schemas.get(call.get("name")), call.get("arguments")
        if not isinstance(schema, dict) or not isinstance(args, dict) or names.count(call["name"]) > 1:
            continue
        required = schema.get("required") or []
        for key, prop in (schema.get("properties") or {}).items():
            if (key in args or key in required or not isinstance(prop, dict) or schema_types(prop) != {"string"}
                    or "enum" in prop or "const" in prop):
                continue
            used = {v.casefold() for v in args.values() if isinstance(v, str)}
            fits = value_validator(prop).is_valid
            options = [s for s in named_spans(query, key) if s.casefold() not in used and fits(s)]
            if not options:
                continue
            args[key] = ""
            scores = span_logprobs(model, tok, as_encoded(model, enc).cross(), value_prefix(calls, i, key) + '"',
                                   options, min_logprob)
            best = max(range(len(options)), key=scores.__getitem__)
            if scores[best] >= min_logprob:
                args[key] = options[best]
                notes.append(f"added {call['name']}'s optional argument {key}={compact(options[best])}: the request "
                             f"names it beside the value (log-probability {scores[best]:.2f})")
            else:
                del args[key]
    return calls, notes


# Words a boolean argument's name shares with most requests, or that say nothing of what it switches.
GENERIC = frozenset({"the", "and", "for", "with", "enable", "enabled", "include", "includes", "use", "allow",
                     "allowed", "show", "only", "should", "can", "has"})
PREFIX = 4  # words of at least this many letters match where their first PREFIX letters do ("weekly", "weekend")


def _word_keys(text: str) -> set[str]:
    found = {w.lower() for w in words(text)}
    return found | {w[:PREFIX] for w in found if len(w) >= PREFIX}


def _enum_unnamed(value, asked: set[str]) -> bool:
    """Whether `value`, an enum string, shares no word (nor a word's first PREFIX letters) with the request."""
    return isinstance(value, str) and not _word_keys(value) & asked


def _unnamed(key: str, value, prop, asked: set[str]) -> bool:
    """Whether an optional argument's value is one the request does not name: a string enum value none of whose
    words the request uses, or a boolean whose name's telling words (3+ letters, not GENERIC) it does not use."""
    if not isinstance(prop, dict):
        return False
    if isinstance(value, str) and isinstance(prop.get("enum"), list):
        return _enum_unnamed(value, asked)
    if isinstance(value, bool):
        telling = _word_keys(" ".join(w for w in words(key) if len(w) > 2 and w.lower() not in GENERIC))
        return bool(telling) and not telling & asked
    return False


def _enum_items(prop: dict) -> bool:
    items = prop.get("items")
    return isinstance(items, dict) and isinstance(items.get("enum"), list)


def _prune(args: dict, schema: dict, asked: set[str], where: str = "") -> tuple[dict, list[str]]:
    """`args` without the optional values the request does not name (`_unnamed`); within an optional array of enum
    strings, the items it does not name; within an optional object, the same, recursively. An array or object left
    empty (or given empty) is dropped. Returns the arguments and the dropped values' paths, as `key=value`."""
    required, props = schema.get("required") or [], schema.get("properties") or {}
    out, dropped = {}, []
    for key, value in args.items():
        prop, path = props.get(key), where + key
        if key in required or not isinstance(prop, dict):
            out[key] = value
            continue
        if _unnamed(key, value, prop, asked):
            dropped.append(f"{path}={compact(value)}")
            continue
        if isinstance(value, list) and _enum_items(prop):
            kept = [v for v in value if not _enum_unnamed(v, asked)]
            dropped += [f"{path}[]={compact(v)}" for v in value if v not in kept]
        elif isinstance(value, dict) and isinstance(prop.get("properties"), dict):
            kept, inner = _prune(value, prop, asked, path + ".")
            dropped += inner
        else:
            out[key] = value
            continue
        if kept and value_validator(prop).is_valid(kept):
            out[key] = kept
        elif kept or not value:
            dropped.append(f"{path}={compact(value)}")
    return out, dropped


def drop_unnamed_args(calls: list[dict], tools: list[Tool], query: str) -> tuple[list[dict], list[str]]:
    """The calls without each optional value the request does not name (`_prune`). Returns the calls and a warning
    for each value dropped."""
    schemas, notes, asked = {t.name: t.parameters for t in tools}, [], _word_keys(query)
    out = []
    for call in calls:
        schema, args = schemas.get(call.get("name")), call.get("arguments")
        if not isinstance(schema, dict) or not isinstance(args, dict):
            out.append(call)
            continue
        kept, dropped = _prune(args, schema, asked)
        notes += [f"dropped {call['name']}'s optional {d}: the request does not name it" for d in dropped]
        out.append({**call, "arguments": kept} if dropped else call)
    return out, notes


def _unnamed_required(args: dict, schema: dict, asked: set[str]) -> list[str]:
    """The required string enum arguments whose values the request does not name (`_enum_unnamed`)."""
    props = schema.get("properties") or {}
    return [k for k in schema.get("required") or [] if isinstance(props.get(k), dict)
            and isinstance(props[k].get("enum"), list) and _enum_unnamed(args.get(k), asked)]


def _swap_enums(calls: list[dict], tools: list[Tool], choices, says: tuple[str, str]) -> tuple[list[dict], list[str]]:
    """The calls with each argument value for which `choices(key, value, prop, schema)` gives exactly one value
    replaced by it, in calls `lone_calls` lets rules change. `says`: how the warnings put what the request does
    not do with the old value and does with the new. Returns the calls and a warning for each value replaced."""
    notes, out = [], []
    for call, schema in lone_calls(calls, tools):
        if schema is None:
            out.append(call)
            continue
        args, props = dict(call["arguments"]), schema.get("properties") or {}
        for key, value in call["arguments"].items():
            named = choices(key, value, props.get(key), schema)
            if named is not None and len(named) == 1:
                notes.append(f"{call['name']}'s {key}={compact(value)}, a value the request does not {says[0]}, "
                             f"replaced by {compact(named[0])}, the one value of its enum the request {says[1]}")
                args[key] = named[0]
        out.append({**call, "arguments": args})
    return out, notes


def _is_enum(value, prop) -> bool:
    return isinstance(value, str) and isinstance(prop, dict) and isinstance(prop.get("enum"), list)


def swap_unnamed_enums(calls: list[dict], tools: list[Tool], query: str) -> tuple[list[dict], list[str]]:
    """The calls with each required string enum value the request does not name (`_enum_unnamed`) replaced by the
    enum's one value the request does name, where it names exactly one (`"decision": "approve"` for "Decline
    Mateo's Spotify Premium request"). Not for a tool called more than once (which call has which value?). Returns
    the calls and a warning for each value replaced."""
    asked = _word_keys(query)

    def choices(key, value, prop, schema):
        if not _unnamed_required({key: value}, schema, asked):
            return None
        return [e for e in prop["enum"] if isinstance(e, str) and not _enum_unnamed(e, asked)]
    return _swap_enums(calls, tools, choices, ("name", "names"))


def _phrase(text: str) -> str:
    """Text as lower-case words between single blanks, padded, so that `in` finds whole words and phrases."""
    return " " + re.sub(r"[\W_]+", " ", text.lower()).strip() + " "


MIN_PHRASE = 3  # shorter enum values ("on", "up") stand in most requests by chance


def swap_phrased_enums(calls: list[dict], tools: list[Tool], query: str) -> tuple[list[dict], list[str]]:
    """The calls with each string enum value the request does not say word for word replaced by the one value of
    its enum (of MIN_PHRASE letters or more) that it does say, where it says exactly one that no value of the
    answer is (`"unlock_with": "master password"` -> `"biometrics"` for "lock in 10 minutes and unlock with
    biometrics"; "password" alone had kept the value as named). Case, blanks, underscores and hyphens aside. Not
    for a tool called more than once. Returns the calls and a warning for each value replaced."""
    said = _phrase(query)
    taken = {str(v).lower() for c in calls if isinstance(c.get("arguments"), dict) for v in leaf_values(c["arguments"])}

    def choices(key, value, prop, schema):
        if not _is_enum(value, prop) or _phrase(value) in said:
            return None
        return [e for e in prop["enum"] if isinstance(e, str) and len(e) >= MIN_PHRASE and _phrase(e) in said
                and e.lower() not in taken]
    return _swap_enums(calls, tools, choices, ("say", "says word for word"))


def drop_unnamed_calls(calls: list[dict], tools: list[Tool], query: str) -> tuple[list[dict], list[str]]:
    """The calls without those resting on nothing the request says: a call with a required string enum value the
    request does not name (`_enum_unnamed`, after `swap_unnamed_enums`) and no other argument but booleans
    (`start_watch_workout {"activity": "strength training"}` for "turn off wrist detection on my watch"). Returns
    the calls and a warning for each call dropped."""
    schemas, notes, asked, out = {t.name: t.parameters for t in tools}, [], _word_keys(query), []
    for call in calls:
        schema, args = schemas.get(call.get("name")), call.get("arguments")
        if not isinstance(schema, dict) or not isinstance(args, dict):
            out.append(call)
            continue
        unnamed = _unnamed_required(args, schema, asked)
        if unnamed and all(k in unnamed or isinstance(v, bool) for k, v in args.items()):
            notes.append(f"dropped the call to {call['name']}: the request names none of its values ("
                         + ", ".join(f"{k}={compact(args[k])}" for k in unnamed) + ")")
            continue
        out.append(call)
    return out, notes


_SAYS_TRUE = frozenset({"yes", "on", "true", "enabled", "enable"})
_SAYS_FALSE = frozenset({"no", "off", "false", "disabled", "disable"})
_SWITCH_LINKS = frozenset({"is", "set", "to", "switched", "turned", "should", "be", "="})
_SWITCH_TOKEN = re.compile(r"[^\W_]+|=")
MAX_SWITCH_LINKS = 3


def named_switch(query: str, key: str) -> bool | None:
    """The value the request gives a boolean argument by writing all of its name's words then (through at most
    MAX_SWITCH_LINKS linking words) yes/on/enabled or no/off/disabled ("include symbols: yes", "unread only switched
    on", "reply all disabled"); None where it gives none, or both."""
    kw = key_words(key)
    toks = [stem(m.group().lower()) for m in _SWITCH_TOKEN.finditer(query)]
    found = set()
    for i in range(len(toks) - len(kw) + 1) if kw else ():
        if set(toks[i:i + len(kw)]) != kw:
            continue
        j = i + len(kw)
        while j < len(toks) and toks[j] in _SWITCH_LINKS and j - i - len(kw) < MAX_SWITCH_LINKS:
            j += 1
        if j < len(toks) and (toks[j] in _SAYS_TRUE or toks[j] in _SAYS_FALSE):
            found.add(toks[j] in _SAYS_TRUE)
    return found.pop() if len(found) == 1 else None


def fill_named_switches(calls: list[dict], tools: list[Tool], query: str) -> tuple[list[dict], list[str]]:
    """The calls with each optional boolean argument they leave out filled in where the request gives it a value
    (`named_switch`). Not for a tool called more than once. Returns the calls and a warning for each argument added."""
    notes, out = [], []
    for call, schema in lone_calls(calls, tools):
        if schema is None:
            out.append(call)
            continue
        required, args = schema.get("required") or [], dict(call["arguments"])
        for key, prop in (schema.get("properties") or {}).items():
            if key in args or key in required or not isinstance(prop, dict) or schema_types(prop) != {"boolean"}:
                continue
            if (value := named_switch(query, key)) is not None:
                args[key] = value
                notes.append(f"added {call['name']}'s optional argument {key}={compact(value)}: the request gives it")
        out.append({**call, "arguments": args})
    return out, notes
