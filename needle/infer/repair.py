"""Span repair: a required string the request does not contain is re-chosen among the request's own spans.

Grounding drops a call whose required value is not in the request; most such values are failed copies
('Yellowstone National Park' -> "Northorthorthorth"). Before that, the model scores every span of the request
(1-6 words) as the value, given the answer written up to it, and the likeliest replaces the invented one when
the model gives it a log-probability of at least `min_logprob`; otherwise the call is dropped as before.
"""
from __future__ import annotations

import os
from functools import lru_cache

import torch
import torch.nn.functional as F

from needle.data.format import compact, decoder_prefix
from needle.data.grounding import ungrounded_values
from needle.data.schema import Tool, value_validator
from needle.model.model import Needle

MAX_SPAN_WORDS = 6
MIN_LOGPROB = -2.0  # chosen on the generated validation sample (model card, "span repair")
CHUNK = 64  # candidate spans scored per batch
EDGE = " \t\n,.;:!?()[]{}'\"\u201c\u201d\u2018\u2019"


def query_spans(query: str, max_words: int = MAX_SPAN_WORDS) -> list[str]:
    """Distinct runs of 1..max_words whitespace-separated words, outer punctuation stripped ("Eminem's" also
    gives "Eminem")."""
    words, spans = query.split(), {}
    for i in range(len(words)):
        for j in range(i + 1, min(len(words), i + max_words) + 1):
            span = " ".join(words[i:j]).strip(EDGE)
            for s in (span, span[:-2] if span.endswith(("'s", "\u2019s")) else ""):
                if s.strip(EDGE):
                    spans[s] = None
    return list(spans)


@lru_cache(maxsize=4)
def closing_ids(tok) -> torch.Tensor:
    """Ids of the tokens that begin with a double quote: the ones that can end a string value (`"`, `","`, `"}}]`)."""
    return torch.tensor([i for i in range(tok.vocab_size) if (tok.decode([i]) or "x")[0] == '"'])


@torch.no_grad()
def encode_request(model: Needle, enc_ids: list[int], memory: torch.Tensor | None = None) -> tuple[list, torch.Tensor]:
    """The decoder's cross-attention keys/values for one encoder prompt, and its mask. `memory`: the prompt's encoder
    output (S, d) when already computed (by the fast engine while decoding), else the model encodes the prompt."""
    ids = torch.tensor([enc_ids], dtype=torch.long)
    mask = torch.ones_like(ids, dtype=torch.bool)
    if memory is None:
        memory = model.encode(ids, mask)[0]
    elif memory.shape[0] != len(enc_ids):
        raise ValueError(f"encoder output has {memory.shape[0]} positions, the prompt {len(enc_ids)} tokens")
    return model.cross_kv(memory[None].to(model.embed.weight.dtype)), mask


class Encoded:
    """One request's encoder prompt, for the rules that score spans after decoding (span repair, distinct values,
    array values): the cross-attention keys/values are made on first use and shared, from `memory` (the encoder
    output generation already computed) when given, so a request is encoded once however many rules score."""

    def __init__(self, model: Needle, enc_ids: list[int], memory: torch.Tensor | None = None):
        self.model, self.enc_ids, self.memory, self._cross = model, enc_ids, memory, None

    def cross(self) -> tuple[list, torch.Tensor]:
        if self._cross is None:
            self._cross = encode_request(self.model, self.enc_ids, self.memory)
        return self._cross


def as_encoded(model: Needle, enc: "list[int] | Encoded") -> Encoded:
    """An encoder prompt's ids (encoded when first needed) or an Encoded as it is."""
    return enc if isinstance(enc, Encoded) else Encoded(model, enc)


def shared_rows(seqs: list[list[int]]) -> tuple[list[list[int]], list[tuple[int, int]]]:
    """Rows to decode so that every sequence is the start of one of them: a sequence that begins another (the
    tokens of "Los" begin those of "Los Angeles") is read off the longer one's row, whose causal decoding gives it
    the same log-probabilities. Returns the rows and, for each sequence, (its row, its length)."""
    rows, where = [], {}
    for i in sorted(range(len(seqs)), key=lambda i: -len(seqs[i])):
        if tuple(seqs[i]) not in where:
            rows.append(seqs[i])
            for k in range(1, len(seqs[i]) + 1):
                where.setdefault(tuple(seqs[i][:k]), len(rows) - 1)
    return rows, [(where[tuple(s)], len(s)) for s in seqs]


@torch.no_grad()
def span_logprobs(model: Needle, tok, memory: tuple[list, torch.Tensor], answer_prefix: str, spans: list[str],
                  floor: float = float("-inf"), top: int | None = None) -> list[float]:
    """log P(span, then the string closes | request, answer_prefix) for each span, teacher-forced (memory from
    `encode_request`). The close is any token that starts with a quote: the model writes `San Francisco"}}]`,
    never a lone `"`. A span whose first token alone scores below `floor`, or (given `top`) is not among the `top`
    spans whose first tokens score highest, is not scored further (-inf)."""
    seqs = [decoder_prefix(tok) + tok.encode(answer_prefix + s) for s in spans]
    fits = [i for i, s in enumerate(seqs) if len(s) <= model.cfg.max_decoder_len]  # longer: no room for the close
    if len(fits) < len(seqs):
        kept = span_logprobs(model, tok, memory, answer_prefix, [spans[i] for i in fits], floor, top) if fits else []
        scores = dict(zip(fits, kept))
        return [scores.get(i, float("-inf")) for i in range(len(spans))]
    cross, mask = memory
    # the tokens every candidate shares with the answer prefix written alone (BPE may merge across the boundary);
    # every token after them is scored, so a lone span, or spans that begin alike, are scored in full
    start = len(os.path.commonprefix(seqs + [decoder_prefix(tok) + tok.encode(answer_prefix)]))
    start = max(1, min(start, min(len(s) for s in seqs) - 1))
    longest = max(len(s) for s in seqs)
    caches = model.new_caches(1, longest)
    first = F.log_softmax(model.decode(torch.tensor([seqs[0][:start]]), cross, mask, caches, pos=0)[0, -1], -1)
    out = [float(first[s[start]]) for s in seqs]  # the first token's log-probability is shared by no one else
    alive = [i for i, score in enumerate(out) if score >= floor]
    if top is not None and len(alive) > top:
        alive = sorted(sorted(alive, key=out.__getitem__, reverse=True)[:top])
    kept = set(alive)
    out = [score if i in kept else float("-inf") for i, score in enumerate(out)]
    rows, member = shared_rows([seqs[i] for i in alive])
    tails = []  # per row: running sums of its next-token log-probabilities (0 before the first), and its close
    for c in range(0, len(rows), CHUNK):
        chunk = rows[c:c + CHUNK]
        n, width = len(chunk), max(len(s) for s in chunk) - start
        inp = torch.full((n, width), tok.pad_id, dtype=torch.long)
        tgt = torch.full((n, width), -1, dtype=torch.long)
        for i, s in enumerate(chunk):
            inp[i, :len(s) - start] = torch.tensor(s[start:])
            tgt[i, :len(s) - start - 1] = torch.tensor(s[start + 1:])
        batch_caches = model.new_caches(n, longest)
        for big, one in zip(batch_caches, caches):
            big.k[:, :, :start], big.v[:, :, :start] = one.k[:, :, :start], one.v[:, :, :start]
        kv = [(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in cross]
        logp = F.log_softmax(model.decode(inp, kv, mask.expand(n, -1), batch_caches, pos=start), -1)
        rest = F.pad((logp.gather(-1, tgt.clamp(min=0)[..., None])[..., 0] * (tgt >= 0)).cumsum(-1), (1, 0))
        close = logp[..., closing_ids(tok)].logsumexp(-1)  # at each position: the string closes next
        tails += list(zip(rest, close))
    for i, (row, length) in zip(alive, member):  # a span is its row's first `length` tokens
        rest, close = tails[row]
        out[i] += float(rest[length - start - 1] + close[length - start - 1])  # up to its last token, then closed
    return out


def value_prefix(calls: list[dict], i: int, key: str) -> str:
    """The compact answer text up to where calls[i]'s value for `key` begins (after its colon)."""
    call, done = calls[i], [compact(c) for c in calls[:i]]
    args = [f"{compact(k)}:{compact(v)}" for k, v in call["arguments"].items() if k != key]
    args = args[:list(call["arguments"]).index(key)]
    return ("[" + "".join(d + "," for d in done) + '{"name":' + compact(call["name"]) + ',"arguments":{'
            + "".join(a + "," for a in args) + compact(key) + ":")


def repair_calls(model: Needle, tok, enc: "list[int] | Encoded", calls: list[dict], tools: list[Tool], query: str,
                 min_logprob: float = MIN_LOGPROB) -> tuple[list[dict], list[str]]:
    """The calls with each invented required string replaced by the request span the model likes best (when
    it likes it enough), and a note for each replacement. Anything else is left for `ground_calls`."""
    schemas, notes, spans, enc = {t.name: t.parameters for t in tools}, [], None, as_encoded(model, enc)
    calls = [dict(c, arguments=dict(c["arguments"])) if isinstance(c.get("arguments"), dict) else c for c in calls]
    for i, call in enumerate(calls):
        schema, args = schemas.get(call.get("name")), call.get("arguments")
        if not isinstance(schema, dict) or not isinstance(args, dict):
            continue
        props = schema.get("properties") or {}
        for key in [k for k in schema.get("required") or [] if isinstance(args.get(k), str)]:
            if not ungrounded_values({key: args[key]}, query, props.get(key) or {}):
                continue
            spans = query_spans(query) if spans is None else spans
            taken = {v for k, v in args.items() if k != key and isinstance(v, str)}
            fits = value_validator(props.get(key) or {}).is_valid
            options = [s for s in spans if s not in taken and fits(s)]
            if not options:
                continue
            scores = span_logprobs(model, tok, enc.cross(), value_prefix(calls, i, key) + '"', options, min_logprob)
            best = max(range(len(options)), key=scores.__getitem__)
            if scores[best] >= min_logprob:
                notes.append(f"{call['name']}'s required {key}={compact(args[key])} is not in the request: "
                             f"replaced by {compact(options[best])}, the span of the request the model rates highest "
                             f"(log-probability {scores[best]:.2f})")
                args[key] = options[best]
    return calls, notes
