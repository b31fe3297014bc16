"""Tool choice with a lexical prior. While a tool name is written, each token that continues an offered name (as
answers tokenize it) gets `weight` x the highest BM25 relevance to the request among the tools it continues;
names sharing a first token part where the model and the prior say. After the first call the relevance is that
of the rest of the request (past the values the answer has copied), or else the whole request's halved per call
already made to a tool.
The relevance also overrides abstention: a request this close to an offered tool is answered with a call even
when the model would rather name a tool that is not offered. Word weights (IDF) come from the training tools.
"""
from __future__ import annotations

import gzip
import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from needle.data.grounding import is_grounded, leaf_values
from needle.data.respell import words
from needle.data.schema import Tool

NAME_BYTES = b'{"name":"'  # what stands before every tool name in an answer
IDF_FILE = Path(__file__).with_name("tool_idf.json.gz")  # scripts/build_tool_idf.py
# a tool's relevance counts this much less for each call already made to it, where the relevance is the whole
# request's (no value of the answer's finished calls found in it; model card, "The rest of the request")
REPEAT_DISCOUNT = 0.5
NAME_WORD_IDF = 3.0  # a call that copies no value ends at its name's words this rare or rarer (not set, get)
# An answer is decoded again with another first tool when that tool, not called, is this much more relevant than
# the first call's to the part of the request the first call used (`first_tool_retry`)
FIRST_CLAUSE_MARGIN = 5.0
FORCED = 1e6  # the bonus that makes a name the only choice


@dataclass
class NameChoice:
    """One request's offered tools as the decoder writes them: each name's tokens and its relevance."""
    names: list[bytes]
    tokens: list[list[tuple[int, int]]]  # (token, its byte length) spelling each name, as answers tokenize it
    relevance: list[float]  # BM25 of the request against each tool's text
    query: str = ""  # the request, and its offered tools, for the relevance of what the answer has not yet used
    tools: list[Tool] | None = None
    first: int | None = None  # the tool the first call must name (a retry, `first_tool_retry`); None: any

    def __post_init__(self):
        self._rest: dict[int, list[float] | None] = {}  # relevance of the request from a position on, by position
        self._cuts: dict[bytes, int] = {}  # the finished calls' text -> where what they used of the request ends
        self.top = max(self.relevance, default=0.0)
        self.next = []  # per tool: bytes of the name written -> the name's next token
        for toks in self.tokens:
            nxt, size = {}, 0
            for token, n in toks:
                nxt[size] = token
                size += n
            self.next.append(nxt)

    def relevance_after(self, answer: bytes) -> list[float] | None:
        """Relevance of the rest of the request: past what the answer's finished calls used of it (`used_up_to`),
        the part still to be answered. None where nothing used is found, or nothing is left."""
        done = answer[:answer.rfind(NAME_BYTES)]  # the same for every token of the name being written
        if done not in self._cuts:
            self._cuts[done] = used_up_to(self.query, answer) if self.tools else 0
        cut = self._cuts[done]
        if cut and cut not in self._rest:
            rest = self.query[cut:]
            self._rest[cut] = relevance(rest, self.tools) if words(rest) else None
        return self._rest.get(cut)


def copied_values(call) -> list:
    """A call's argument values that could be read off a request: not flags, nulls or blanks."""
    values = leaf_values(call.get("arguments") if isinstance(call, dict) else None)
    return [v for v in values if v is not None and not isinstance(v, bool) and str(v).strip()]


def occurrences(value, low: str) -> list[re.Match]:
    """Where a value stands in a lower-cased request as a whole word, any case; a number also as an integer when it
    is one, never as part of another number ("5" is not in "5.0")."""
    forms = {str(value).lower()} | ({str(int(value))} if isinstance(value, float) and value.is_integer() else set())
    return sorted((m for text in forms for m in re.finditer(r"(?<![\w.])" + re.escape(text) + r"(?!\w|[.,]\d)", low)),
                  key=lambda m: m.start())


def used_up_to(query: str, answer: bytes) -> int:
    """Where, in the request, what the answer's finished calls used of it ends: the end of the last value they
    copy (its first occurrence as a whole word, any case; a number also as an integer when it is one), or for a
    call that copies none, of the last of its name's rarer words ("water" and "reminder" of set_water_reminder,
    as the start of a word: "reminders"). 0 when none is found."""
    i = answer.rfind(NAME_BYTES)
    done = answer[:i].rstrip(b",")
    if i <= 1 or not done.startswith(b"["):
        return 0
    try:
        calls = json.loads(done + b"]")
    except ValueError:
        return 0
    return calls_used_up_to(query, calls if isinstance(calls, list) else [])


def calls_used_up_to(query: str, calls: list) -> int:
    """`used_up_to` for calls already parsed."""
    low, end = query.lower(), 0
    for call in calls:
        here = 0
        for v in copied_values(call):
            here = max(here, min((m.end() for m in occurrences(v, low)), default=0))
        if not here and isinstance(call, dict) and isinstance(call.get("name"), str):
            for w in words(call["name"]):
                if idf(w) >= NAME_WORD_IDF:
                    at = re.search(r"(?<!\w)" + re.escape(w) + r"\w*", low)
                    here = max(here, at.end() if at else 0)
        end = max(end, here)
    return end


@lru_cache(maxsize=1)
def _background() -> tuple[int, dict[str, int]]:
    with gzip.open(IDF_FILE, "rt", encoding="utf-8") as f:
        data = json.load(f)
    return data["documents"], data["df"]


def idf(word: str) -> float:
    """A word's inverse document frequency among the training tools' texts (BM25's, kept positive)."""
    n, df = _background()
    d = df.get(word, 0)
    return math.log(1 + (n - d + 0.5) / (d + 0.5))


def relevance(query: str, tools: list[Tool]) -> list[float]:
    """BM25 scores of the request's words against each tool's words (name words thrice; shortlist.tool_words),
    each word's IDF taken from the training tools (among two offered tools BM25's own IDF is zero or less)."""
    from rank_bm25 import BM25Okapi  # imported here: the GPU image lacks it

    from needle.infer.shortlist import tool_words
    query_words = words(query)
    if not query_words or not tools:
        return [0.0] * len(tools)
    bm25 = BM25Okapi([tool_words(t) or ["_"] for t in tools])
    bm25.idf = {w: idf(w) for w in bm25.idf}
    return [float(s) for s in bm25.get_scores(query_words)]


def name_tokens(tok, pieces: list[bytes], name: str) -> list[tuple[int, int]]:
    """The tokens that spell `name` inside an answer, with their byte lengths (tokenized in context, cut where
    a token runs past the name); `pieces`: each token's bytes."""
    opening = tok.encode("[" + NAME_BYTES.decode())
    ids = tok.encode("[" + NAME_BYTES.decode() + name + '","arguments":')
    if ids[:len(opening)] != opening:
        return []
    out, size, target = [], 0, len(name.encode("utf-8"))
    for i in ids[len(opening):]:
        n = len(pieces[i])
        if size + n > target:
            break
        out.append((i, n))
        size += n
    return out


def name_choice(tok, pieces: list[bytes], query: str, tools: list[Tool]) -> NameChoice | None:
    """The prior for one request; None when some name cannot be written token by token from its start."""
    tokens = [name_tokens(tok, pieces, t.name) for t in tools]
    if not tools or not all(tokens):
        return None
    return NameChoice([t.name.encode("utf-8") for t in tools], tokens, relevance(query, tools), query, tools)


def open_name(answer: bytes) -> bytes | None:
    """The part of a tool name written so far when the answer is inside one (b"" at its start), else None."""
    i = answer.rfind(NAME_BYTES)
    if i < 0:
        return None
    written = answer[i + len(NAME_BYTES):]
    return None if b'"' in written else written


def name_bonuses(choice: NameChoice, answer: bytes, written: bytes) -> dict[int, float]:
    """Next tokens that continue offered names as the answer's tokenization writes them, each with the highest
    relevance among the tools it continues. After the first call, the relevance is the rest of the request's
    (`NameChoice.relevance_after`); where there is none, the whole request's, discounted for each call the answer
    already makes to a tool."""
    out: dict[int, float] = {}
    if choice.first is not None and answer.count(NAME_BYTES) == 1:
        token = choice.next[choice.first].get(len(written))
        return {token: FORCED} if token is not None else {}
    rest = choice.relevance_after(answer) if answer.count(NAME_BYTES) > 1 else None
    scores, discount = (choice.relevance, REPEAT_DISCOUNT) if rest is None else (rest, 1.0)
    for name, nxt, rel in zip(choice.names, choice.next, scores):
        token = nxt.get(len(written))
        if token is None or not name.startswith(written):
            continue
        rel *= discount ** answer.count(b'"name":"' + name + b'"')
        out[token] = max(out.get(token, 0.0), rel)
    return out


def prior_choice(logits: torch.Tensor, cols: torch.Tensor, bonuses: dict[int, float], weight: float) -> int:
    """The allowed token with the best logit plus `weight` x its bonus; logits (len(cols),) over sorted ids cols."""
    scores = logits.clone()
    ids = torch.tensor(list(bonuses))
    at = torch.searchsorted(cols, ids).clamp(max=len(cols) - 1)
    hit = cols[at] == ids
    scores[at[hit]] += weight * torch.tensor(list(bonuses.values()))[hit]
    return int(cols[scores.argmax()])


def copies_request(call: dict, query: str) -> bool:
    """Whether any of a call's argument values (not a flag or null) can be read off the request."""
    return any(v is not None and not isinstance(v, bool) and is_grounded(v, query)
               for v in leaf_values(call.get("arguments") or {}))


def drop_unrelated(calls: list[dict], tools: list[Tool], query: str, floor: float,
                   scores: list[float] | None = None) -> tuple[list[dict], list[str]]:
    """Calls are not made (a warning each) when their tool's relevance to the request is at most `floor` and none
    of their values is read off the request: mostly a request no offered tool serves, answered with a tool whose
    values need no copying (an enum value, a flag, nothing). "dim the kitchen to 10" keeps `set_lights` (relevance
    0, but "kitchen" and 10 are the request's). A request with no words to compare (digits or symbols alone) keeps
    its calls; one in another language than the tools' keeps only calls that copy from it. `scores`: the tools'
    relevance when already computed (the grammar's NameChoice holds it), else computed here."""
    if not calls or not any(any(ch.isalpha() for ch in w) for w in words(query)):
        return calls, []
    by_name = dict(zip((t.name for t in tools), relevance(query, tools) if scores is None else scores))
    kept, warnings = [], []
    for call in calls:
        rel = by_name.get(call.get("name"))
        if rel is not None and rel <= floor and not copies_request(call, query):
            warnings.append(f"dropped the call to {call['name']}: the request shares too little with the tool "
                            f"(relevance {rel:.1f}, at most {floor:g}) and none of the call's values")
        else:
            kept.append(call)
    return kept, warnings


def drop_nothing_new(calls: list[dict], query: str) -> tuple[list[dict], list[str]]:
    """A call after the first is not made (a warning each) when every value it copies from the request stands only
    before the end of what the calls kept before it copied (each value's first occurrence): it asks for nothing the
    request has left (`getImages {"id": "id"}` after `{"id": "ZASN3"}`, the same timer twice). Calls that copy
    nothing (flags, enum values) are kept."""
    low, kept, warnings, end = query.lower(), [], [], 0
    for call in calls:
        found = [occurrences(v, low) for v in copied_values(call)]
        found = [spots for spots in found if spots]
        if kept and found and all(spots[-1].end() <= end for spots in found):
            warnings.append(f"dropped the call to {call.get('name')}: every value it copies stands in the request "
                            f"before what the calls before it used")
            continue
        kept.append(call)
        end = max([end] + [spots[0].end() for spots in found])
    return kept, warnings


def first_tool_retry(calls: list[dict], tools: list[Tool], query: str,
                     margin: float = FIRST_CLAUSE_MARGIN) -> int | None:
    """The offered tool an answer's first call should have named, or None. The model often puts a later clause's
    tool first and fills it with the first clause's values, then calls that tool again for its own clause or stops
    ("play Radio Paradise ... list transcoder properties using transcoder id 6S-11311" -> `listTranscoderProperties
    {"transcoder_id": "Radio Paradise"}`, ..., the same tool again). The part of the request the first call used
    (`used_up_to`: up to its last copied value, or its name's rarer words) is scored against the tools; a tool the
    answer does not call that scores more than `margin` above the first call's own is returned (the best such)."""
    if not calls:
        return None
    names = [c.get("name") for c in calls]
    cut = calls_used_up_to(query, calls[:1])
    if not cut:
        return None
    scores = relevance(query[:cut], tools)
    own = max((s for t, s in zip(tools, scores) if t.name == names[0]), default=0.0)
    best = max(((s, i) for i, (t, s) in enumerate(zip(tools, scores)) if t.name not in names and s > own + margin),
               default=None)
    return best[1] if best else None
