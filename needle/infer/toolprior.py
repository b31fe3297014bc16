"""Tool choice with a lexical prior. While a tool name is written, each token that continues an offered name (as
answers tokenize it) gets `weight` x the highest BM25 relevance to the request among the tools it continues,
halved per call already made to a tool; names sharing a first token part where the model and the prior say.
The relevance also overrides abstention: a request this close to an offered tool is answered with a call even
when the model would rather name a tool that is not offered. Word weights (IDF) come from the training tools.
"""
from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from needle.data.grounding import is_grounded, leaf_values
from needle.data.respell import words
from needle.data.schema import Tool

NAME_BYTES = b'{"name":"'  # what stands before every tool name in an answer
IDF_FILE = Path(__file__).with_name("tool_idf.json.gz")  # scripts/build_tool_idf.py
REPEAT_DISCOUNT = 0.5  # a tool's relevance counts this much less for each call already made to it


@dataclass
class NameChoice:
    """One request's offered tools as the decoder writes them: each name's tokens and its relevance."""
    names: list[bytes]
    tokens: list[list[tuple[int, int]]]  # (token, its byte length) spelling each name, as answers tokenize it
    relevance: list[float]  # BM25 of the request against each tool's text

    def __post_init__(self):
        self.top = max(self.relevance, default=0.0)
        self.next = []  # per tool: bytes of the name written -> the name's next token
        for toks in self.tokens:
            nxt, size = {}, 0
            for token, n in toks:
                nxt[size] = token
                size += n
            self.next.append(nxt)


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
    return NameChoice([t.name.encode("utf-8") for t in tools], tokens, relevance(query, tools))


def open_name(answer: bytes) -> bytes | None:
    """The part of a tool name written so far when the answer is inside one (b"" at its start), else None."""
    i = answer.rfind(NAME_BYTES)
    if i < 0:
        return None
    written = answer[i + len(NAME_BYTES):]
    return None if b'"' in written else written


def name_bonuses(choice: NameChoice, answer: bytes, written: bytes) -> dict[int, float]:
    """Next tokens that continue offered names as the answer's tokenization writes them, each with the highest
    relevance among the tools it continues (discounted for each call the answer already makes to a tool)."""
    out: dict[int, float] = {}
    for name, nxt, rel in zip(choice.names, choice.next, choice.relevance):
        token = nxt.get(len(written))
        if token is None or not name.startswith(written):
            continue
        rel *= REPEAT_DISCOUNT ** answer.count(b'"name":"' + name + b'"')
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
