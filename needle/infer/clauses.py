"""Calls for the clauses an answer leaves out.

Asked for two or more things, the model often answers one and stops (`get_flight_status` alone for "update
existing location rule, id = id_9337 and then get live status of a flight ..."); asked for one thing, it does much
better. So once a request is answered with calls, its clauses (the parts between "and", "and then", ", then", "; ",
" plus ", ", after that ", " as well as ", ". Also, ") of at least MIN_WORDS words that hold none of the values the
calls copy are answered alone; a clause that holds one is part of a call already made. A call from such a clause is
added where its tool is not called yet, is relevant to the clause (BM25, as the tool prior scores it) at least as
much as the relevance floor asks of calls, and the call copies something the answer does not have yet ("make the
rating four", alone, calls a sibling of the answer's tool with the rating the answer already has: the clause was an
argument written as a word). Answers with no call stay as they are, so abstention does not change.
"""
from __future__ import annotations

import re

from needle.data.format import compact
from needle.data.schema import Tool
from needle.infer.toolprior import copied_values, occurrences, relevance

JOINER = re.compile(r"\s+and then\s+|,\s*then\s+|,\s*and also\s+|\.\s+also,?\s+|;\s+|\s+plus\s+|,?\s*after that,?\s+"
                    r"|\s+as well as\s+|\s+and\s+", re.IGNORECASE)
EDGE = " \t\n.,;:!?"
# Shorter clauses ("Go ahead", "be a dear") are answered with calls made up of their few words; chosen on the
# two validation samples (model card, "Clauses answered alone").
MIN_WORDS = 3


def clauses(query: str) -> list[tuple[int, int]]:
    """(start, end) of each part of the request between joiners, outer blanks and punctuation left out; parts with
    nothing but those are skipped."""
    parts, at = [], 0
    for m in [*JOINER.finditer(query), None]:
        end = m.start() if m else len(query)
        text = query[at:end]
        start = at + len(text) - len(text.lstrip(EDGE))
        stop = at + len(text.rstrip(EDGE))
        if stop > start:
            parts.append((start, stop))
        at = m.end() if m else at
    return parts


def _anchors(calls: list[dict], low: str) -> list[int | None]:
    """Where each call's first copied value stands in the lower-cased request (None: nowhere)."""
    return [min((m.start() for v in copied_values(c) for m in occurrences(v, low)), default=None) for c in calls]


def open_clauses(query: str, calls: list[dict], tools: list[Tool], floor: float) -> list[tuple[int, int]]:
    """The clauses of a request that has two or more, of at least MIN_WORDS words, where no value the calls copy
    stands (any of its occurrences), and to which a tool the calls do not name is relevant at least `floor`: the
    only clauses whose own answer `add_clause_calls` could take a call from."""
    parts = clauses(query)
    if len(parts) < 2:
        return []
    low, called = query.lower(), {c.get("name") for c in calls}
    used = [m.span() for c in calls for v in copied_values(c) for m in occurrences(v, low)]
    return [(a, b) for a, b in parts
            if len(query[a:b].split()) >= MIN_WORDS and not any(s < b and a < e for s, e in used)
            and any(r >= floor for t, r in zip(tools, relevance(query[a:b], tools)) if t.name not in called)]


def add_clause_calls(calls: list[dict], answers: list[tuple[int, int, list[dict]]], tools: list[Tool], query: str,
                     floor: float) -> tuple[list[dict], list[str]]:
    """The calls with, from each clause's own answer ((start, end, calls), in the request's order), each call to a
    tool no call names yet whose relevance to the clause is at least `floor` and that copies something no call
    has (or nothing), put before the first call whose values stand later in the request. Returns the calls and a
    warning for each one added."""
    out, notes = list(calls), []
    names, have = {c.get("name") for c in calls}, {str(v).lower() for c in calls for v in copied_values(c)}
    low = query.lower()
    for start, end, found in answers:
        rel = dict(zip((t.name for t in tools), relevance(query[start:end], tools)))
        for call in found:
            name, copied = call.get("name"), {str(v).lower() for v in copied_values(call)}
            if name in names or rel.get(name, 0.0) < floor or (copied and copied <= have):
                continue
            names.add(name)
            have |= copied
            at = next((j for j, a in enumerate(_anchors(out, low)) if a is not None and a > start), len(out))
            out.insert(at, call)
            notes.append(f"added {compact(call)}: the clause {compact(query[start:end])}, answered alone, calls "
                         f"{name}, which the answer did not (relevance {rel[name]:.1f})")
    return out, notes
