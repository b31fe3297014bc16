"""Array values: each item once, the items the request lists beside them, in the request's order.

The small model writes list arguments worst of all (14 of 151 right in the 1,500-request validation sample): it
repeats an item (["printer paper", "printer paper"], ["As It Was", "Bad Guy", "Bad Guy"]) or stops early. After
span repair, an item the array holds more often than the request states it is re-chosen among the request's spans by
the model's own scores (needle/infer/repair.py), or dropped when the model rates none highly enough; an array of
request spans gets the items the request lists right after its last item (or before its first) when the model rates
them highly enough as the next item; and an array changed so is put in the request's order.
"""
from __future__ import annotations

import re

from needle.data.format import compact
from needle.data.grounding import normalise_text
from needle.data.schema import Tool
from needle.infer.repair import Encoded, as_encoded, query_spans, span_logprobs, value_prefix
from needle.model.model import Needle

MIN_LOGPROB = -4.0  # chosen on the validation sample (model card, "array values"); -7 did the same
BACK_MARGIN = 2.0  # an item before the first is added when rated at most this far below the first item itself
MAX_ITEM_WORDS = 4
_SEP_AFTER = re.compile(r"\s*,\s*(?:and\s+|&\s+)?|\s+(?:and|&)\s+|\s*&\s*")
_SEP_BEFORE = re.compile(r"(?:\s*,\s*|\s+and\s+|\s*&\s*)$")
_ITEM_END = re.compile(r"[,;!?()\[\]\"\u201c\u201d]|[.:](?:\s|$)")  # "khanacademy.org" is one item


def stated_times(item, query: str) -> int:
    """How many times the request states an item (as a whole word or number; at least once: values the request
    words differently, "two" for 2, are not counted against)."""
    if isinstance(item, bool) or not isinstance(item, (str, int, float)):
        return len(query) + 1  # objects and flags: no limit
    text = normalise_text(str(int(item)) if isinstance(item, float) and item.is_integer() else str(item))
    if not text:
        return len(query) + 1
    return max(1, len(re.findall(rf"(?<!\w){re.escape(text)}(?!\w)", normalise_text(query))))


def _occurrences(query: str, item: str):
    return re.finditer(rf"(?<!\w){re.escape(item)}(?!\w)", query)  # whole words: not "Was" in "Washington"


def listed_after(query: str, item: str) -> list[str]:
    """Candidates for the item the request lists right after `item` ("a, b and c": after "b", "c"): runs of one to
    four words that follow a list separator, up to the end of the clause."""
    out = []
    for m in _occurrences(query, item):
        if sep := _SEP_AFTER.match(query, m.end()):
            words = _ITEM_END.split(query[sep.end():], maxsplit=1)[0].split()
            out += [" ".join(words[:k]) for k in range(1, min(MAX_ITEM_WORDS, len(words)) + 1)]
    return list(dict.fromkeys(out))


def listed_before(query: str, item: str) -> list[str]:
    """Candidates for the item the request lists right before `item`: runs of one to four words before a separator."""
    out = []
    for m in _occurrences(query, item):
        if sep := _SEP_BEFORE.search(query[:m.start()]):
            words = _ITEM_END.split(query[:sep.start()])[-1].split()
            out += [" ".join(words[-k:]) for k in range(1, min(MAX_ITEM_WORDS, len(words)) + 1)]
    return list(dict.fromkeys(out))


def _free_strings(prop: dict) -> bool:
    """Whether an array's items are free strings (a request span can be one: no enum, format or pattern)."""
    items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
    return items.get("type") == "string" and not {"enum", "const", "format", "pattern"} & items.keys()


class _Scorer:
    """Span repair's scoring for one request (its encoding shared with the other rules, made when first needed)."""

    def __init__(self, model: Needle, tok, enc: Encoded, query: str):
        self.model, self.tok, self.enc, self.query = model, tok, enc, query
        self._spans = None

    def spans(self) -> list[str]:
        """The request's spans (needle/infer/repair.py's query_spans), made once."""
        self._spans = self._spans if self._spans is not None else query_spans(self.query)
        return self._spans

    def best(self, prefix: str, options: list[str], also: str | None = None) -> tuple[str | None, float, float]:
        """The option the model rates highest as the string after `prefix`, its score, and the score of `also`."""
        if not options:
            return None, float("-inf"), float("-inf")
        scores = span_logprobs(self.model, self.tok, self.enc.cross(), prefix, options + ([also] if also else []))
        other = scores.pop() if also else float("-inf")
        top = max(range(len(options)), key=scores.__getitem__)
        return options[top], scores[top], other


def _items_prefix(calls: list[dict], i: int, key: str, before: list) -> str:
    """The answer text up to the opening quote of the next item of calls[i]'s array `key`, `before` written."""
    return value_prefix(calls, i, key) + "[" + "".join(compact(x) + "," for x in before) + '"'


def _unrepeated(calls, i, key, items, free, scorer, notes) -> list:
    """The items with each one held more often than the request states it re-chosen (free strings) or dropped."""
    out = []
    for item in items:
        if out.count(item) < stated_times(item, scorer.query):
            out.append(item)
            continue
        best, score = None, float("-inf")
        if free:
            options = [s for s in scorer.spans() if s not in out and s not in items and not re.search(r"[,&]", s)]
            best, score, _ = scorer.best(_items_prefix(calls, i, key, out), options)
        if best is not None and score >= MIN_LOGPROB:
            notes.append(f"{calls[i]['name']}'s {key} repeats {compact(item)}: replaced by {compact(best)}, the span "
                         f"of the request the model rates highest there (log-probability {score:.2f})")
            out.append(best)
        else:
            notes.append(f"{calls[i]['name']}'s {key} repeats {compact(item)}: dropped the repeat")
    return out


def _completed(calls, i, key, items, scorer, notes) -> list:
    """The items with those the request lists right after the last (or before the first) that the model rates
    highly enough in that place."""
    items = list(items)
    while len(items) < 64:
        options = [o for o in listed_after(scorer.query, items[-1]) if o not in items]
        best, score, _ = scorer.best(_items_prefix(calls, i, key, items), options)
        if best is None or score < MIN_LOGPROB:
            break
        notes.append(f"added {compact(best)} to {calls[i]['name']}'s {key}: the request lists it next "
                     f"(log-probability {score:.2f})")
        items.append(best)
    while len(items) < 64:
        options = [o for o in listed_before(scorer.query, items[0]) if o not in items]
        best, score, first = scorer.best(_items_prefix(calls, i, key, []), options, items[0])
        if best is None or score < first - BACK_MARGIN:
            break
        notes.append(f"added {compact(best)} to {calls[i]['name']}'s {key}: the request lists it before "
                     f"{compact(items[0])} (log-probability {score:.2f})")
        items.insert(0, best)
    return items


def repair_arrays(model: Needle, tok, enc: "list[int] | Encoded", calls: list[dict], tools: list[Tool],
                  query: str) -> tuple[list[dict], list[str]]:
    """The calls with their array arguments' repeats re-chosen or dropped, their lists completed from the request
    and put in its order; a note for each change."""
    schemas, notes = {t.name: t.parameters for t in tools}, []
    scorer = _Scorer(model, tok, as_encoded(model, enc), query)
    calls = [dict(c, arguments=dict(c["arguments"])) if isinstance(c.get("arguments"), dict) else c for c in calls]
    for i, call in enumerate(calls):
        props = (schemas.get(call.get("name")) or {}).get("properties") or {}
        args = call.get("arguments")
        for key, value in list(args.items()) if isinstance(args, dict) else ():
            if not isinstance(value, list) or not value or not isinstance(props.get(key), dict):
                continue
            free, before = _free_strings(props[key]), len(notes)
            items = _unrepeated(calls, i, key, value, free, scorer, notes)
            if free and items and all(isinstance(x, str) and x in query for x in items):
                items = _completed(calls, i, key, items, scorer, notes)
                if len(notes) > before:
                    items = sorted(items, key=query.find)  # the request's order
            args[key] = items
    return calls, notes
