"""Greedy generation: encode -> prefill -> decode_one_token -> decode_n_tokens, and the fast loop.

`generate` runs the model itself: the encoder once, cross-attention K/V once per query, preallocated
self-attention KV caches (used on GPUs). `generate_naive` recomputes everything every token; it is kept
on purpose as the reference the cached paths must match exactly (tests/infer/). `generate_fast` drives
the inference engine (needle/infer/engine.py) under the tools' grammars, with jump-forward.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from needle.infer.constrained import allowed_from_bitmask
from needle.infer.copying import COPY_TOP_K, copy_biased_choice, open_value, used_numbers
from needle.infer.cues import numbers_for_slot
from needle.infer.engine import Engine
from needle.infer.toolprior import name_bonuses, open_name, prior_choice
from needle.model.model import KVCache, Needle

StepCallback = Callable[[int, torch.Tensor], None]  # (step, next tokens (B,)) for streaming


def pad_batch(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (B, S) and mask (B, S), True on real tokens."""
    S = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), S), pad_id, dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, :len(s)] = torch.tensor(s, dtype=torch.long)
    mask = torch.arange(S)[None, :] < torch.tensor([len(s) for s in seqs])[:, None]
    return ids, mask


def prefill(model: Needle, enc_ids, enc_mask, prefix: torch.Tensor, max_len: int):
    """Run the encoder, precompute cross K/V, fill the caches with the decoder prefix (B, P)."""
    memory = model.encode(enc_ids, enc_mask)
    cross = model.cross_kv(memory)
    caches = model.new_caches(enc_ids.shape[0], max_len, dtype=memory.dtype)
    logits = model.decode(prefix, cross, enc_mask, caches, pos=0)
    return cross, caches, logits[:, -1]


def decode_one_token(model: Needle, token: torch.Tensor, cross, enc_mask, caches: list[KVCache], pos: int) -> torch.Tensor:
    """token (B,) at position pos -> logits (B, vocab) for the next one."""
    return model.decode(token[:, None], cross, enc_mask, caches, pos=pos)[:, -1]


def decode_n_tokens(model, first_logits, cross, enc_mask, caches, start: int, max_new: int, eos_id: int,
                    pad_id: int, callback: StepCallback | None = None) -> torch.Tensor:
    """Greedy tokens (B, n) until every row has produced eos or max_new tokens; rows past eos get pad."""
    B = first_logits.shape[0]
    done = torch.zeros(B, dtype=torch.bool, device=first_logits.device)
    out, logits = [], first_logits
    for i in range(max_new):
        nxt = logits.argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
        out.append(nxt)
        if callback is not None:
            callback(i, nxt)
        done |= nxt == eos_id
        if bool(done.all()) or i == max_new - 1:
            break
        logits = decode_one_token(model, nxt, cross, enc_mask, caches, start + i)
    return torch.stack(out, 1) if out else torch.zeros(B, 0, dtype=torch.long)


def _check_lengths(model: Needle, prefix: torch.Tensor, max_new: int) -> int:
    limit = model.cfg.max_decoder_len - prefix.shape[1]
    if limit <= 0:
        raise ValueError(f"decoder prefix of {prefix.shape[1]} tokens leaves no room (max {model.cfg.max_decoder_len})")
    return min(max_new, limit + 1)  # the last token is predicted from position max_decoder_len - 1


@torch.inference_mode()
def generate(model: Needle, enc_ids, enc_mask, prefix: torch.Tensor, max_new: int, eos_id: int, pad_id: int,
             callback: StepCallback | None = None) -> torch.Tensor:
    """Cached greedy decoding; prefix (B, P) is the decoder's fixed start. Returns new tokens (B, n)."""
    max_new = _check_lengths(model, prefix, max_new)
    P = prefix.shape[1]
    cross, caches, logits = prefill(model, enc_ids, enc_mask, prefix, P + max_new)
    return decode_n_tokens(model, logits, cross, enc_mask, caches, P, max_new, eos_id, pad_id, callback)


@torch.inference_mode()
def generate_naive(model: Needle, enc_ids, enc_mask, prefix: torch.Tensor, max_new: int, eos_id: int,
                   pad_id: int) -> torch.Tensor:
    """Reference: re-run encoder and full decoder for every token, no caches of any kind."""
    max_new = _check_lengths(model, prefix, max_new)
    seq = prefix
    done = torch.zeros(prefix.shape[0], dtype=torch.bool)
    out = []
    for i in range(max_new):
        nxt = model(enc_ids, enc_mask, seq)[:, -1].argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
        out.append(nxt)
        done |= nxt == eos_id
        if bool(done.all()):
            break
        seq = torch.cat([seq, nxt[:, None]], 1)
    return torch.stack(out, 1)


@dataclass
class DecodeStats:
    """What one fast generation did: decoder calls after the prefix, tokens chosen, tokens forced."""
    decoder_calls: int = 0
    sampled: int = 0
    forced: int = 0
    abstained: int = 0  # answers ended because the model wanted a tool that is not offered
    failures: list[str] = field(default_factory=list)


ABSTAIN = -1  # _choose's answer for a row whose model wants a tool that is not offered


def _offered_mass(engine: Engine, h: torch.Tensor, allowed: torch.Tensor) -> float:
    """The probability the model gives to the allowed tokens, h (d,) and allowed (vocab,)."""
    return float(torch.softmax(engine.logits(h[None])[0], -1)[allowed].sum())


def _choose(engine: Engine, hs: torch.Tensor, rows: list[int], grammars, bitmask, stats: DecodeStats,
            abstain_below: float = 0.0, copy_bonus: float = 0.0, cue_bonus: float = 0.0,
            tool_prior: float = 0.0, relevant_above: float = 0.0) -> list[int]:
    """Greedy next tokens for the given batch rows (hs: their hidden states, in that order); with grammars, only
    allowed tokens, and only their logits.

    Where a tool name comes next and the model puts less than `abstain_below` of its probability on the
    offered names, it wants a tool that is not offered: ABSTAIN (the grammar would force a wrong call), unless
    the request's relevance to an offered tool reaches `relevant_above`.
    Where an argument value is being written, `copy_bonus` favours tokens that copy the request, and
    `cue_bonus` (over every allowed token) those that copy a number the request names the argument beside.
    While a tool name is written (and the row is not abstaining), `tool_prior` x the relevance to the request
    of the tools each token continues is added to its logit (needle/infer/toolprior.py)."""
    if grammars is None:
        return engine.logits(hs).argmax(-1).tolist()
    for j, b in enumerate(rows):
        if grammars[b] is None:  # a row without a grammar: every token allowed
            bitmask[j].fill_(-1)
        else:
            grammars[b].fill_mask(bitmask[j])
    allowed = allowed_from_bitmask(bitmask[:len(rows)], engine.cfg.vocab_size)
    union = allowed.any(0)
    if not bool(union.any()):  # every row's grammar failed; _advance ends them
        return [0] * len(rows)
    cols = union.nonzero().squeeze(1)
    if len(cols) <= engine.cfg.vocab_size // 8:  # few allowed: logits for those rows only
        logits = engine.logits(hs, cols).masked_fill_(~allowed[:, cols], float("-inf"))
    else:
        cols = torch.arange(engine.cfg.vocab_size)
        logits = engine.logits(hs).masked_fill_(~allowed, float("-inf"))
    chosen = cols[logits.argmax(-1)].tolist()
    for j, b in enumerate(rows):
        g = grammars[b]
        if g is None:
            continue
        relevant = relevant_above and g.names is not None and g.names.top >= relevant_above
        if abstain_below and g.at_name and not relevant and _offered_mass(engine, hs[j], allowed[j]) < abstain_below:
            chosen[j] = ABSTAIN
        elif tool_prior and g.names is not None and (written := open_name(g.text)) is not None:
            if bonuses := name_bonuses(g.names, g.text, written):
                chosen[j] = prior_choice(logits[j], cols, bonuses, tool_prior)
        elif copy_bonus and g.query and (state := open_value(g.text)) is not None:
            used = used_numbers(g.text)
            numbers, cued = (numbers_for_slot(g.text, g.query, g.cues, used, g.positional)
                             if cue_bonus and state[0] != "string" else (None, False))
            bonus, top_k = (cue_bonus, len(cols)) if cued else (copy_bonus, COPY_TOP_K)
            chosen[j] = int(cols[copy_biased_choice(logits[j], cols, state, g.query, g.pieces, bonus, used,
                                                        top_k, numbers)])
    return chosen


def _advance(grammar, token: int, eos_id: int, stats: DecodeStats) -> list[int]:
    """Feed a chosen token to the grammar; returns it plus every token the grammar now forces (and <eos>
    once the answer is complete)."""
    try:
        grammar.consume([token])
        forced = grammar.forced()
        if forced:
            grammar.consume(forced)
    except RuntimeError as e:  # only when the grammar engine itself fails (its limits): end the answer there
        stats.failures.append(str(e))
        return [eos_id]
    stats.forced += len(forced)
    return [token] + forced + ([eos_id] if grammar.finished else [])


def generate_fast(engine: Engine, enc_ids, enc_mask, prefix: torch.Tensor, max_new: int, eos_id: int,
                  pad_id: int, grammars: list | None = None, stats: DecodeStats | None = None,
                  teacher: list[list[int]] | None = None, abstain_below: float = 0.0,
                  copy_bonus: float = 0.0, cue_bonus: float = 0.0, tool_prior: float = 0.0,
                  relevant_above: float = 0.0, encoded: list | None = None) -> list[list[int]]:
    """Greedy decoding on the fast engine; returns each row's new tokens (ending in eos unless cut at max_new).

    With `grammars` (one CallGrammar per row, or None for free text) every answer follows its tools'
    grammar. At batch 1 the tokens a grammar forces are appended without sampling and run through the
    decoder in one call (jump-forward); rows of a batch share positions, so there forced tokens go one per
    step, still without logits.
    `teacher` (benchmarks): each row's answer tokens, taken instead of the argmax after the same work, so
    random weights cost what a model that answers exactly that would. `abstain_below`: see `_choose`; such
    an answer keeps the calls before the unwanted one (often none: `[]`). `copy_bonus`, `cue_bonus`, `tool_prior`:
    see `_choose` (each grammar's `query` is the text copied from). `encoded`: a list, when given, gets the encoder
    output (B, S, d), so that scoring after decoding needs no second encoder pass (needle/infer/repair.py)."""
    stats = stats if stats is not None else DecodeStats()
    B, P = prefix.shape
    limit = engine.cfg.max_decoder_len - P + 1  # the last token is predicted from position max_decoder_len - 1
    if limit <= 0:
        raise ValueError(f"decoder prefix of {P} tokens leaves no room (max {engine.cfg.max_decoder_len})")
    max_new = min(max_new, limit)
    sess = engine.encode(enc_ids, enc_mask, max_len=P + max_new)
    if encoded is not None:
        encoded.append(sess.memory)
    h = engine.hidden(sess, prefix)
    bitmask = torch.zeros(B, (engine.cfg.vocab_size + 31) // 32, dtype=torch.int32)
    out: list[list[int]] = [[] for _ in range(B)]
    queue: list[list[int]] = [[] for _ in range(B)]
    done = [False] * B
    live = list(range(B))  # the batch row of each session row: finished rows leave the session
    while True:
        need = [j for j, b in enumerate(live) if not done[b] and not queue[b]]
        if need:
            hs = h if len(need) == h.shape[0] else h[need]
            need = [live[j] for j in need]
            for b, token in zip(need, _choose(engine, hs, need, grammars, bitmask, stats, abstain_below, copy_bonus,
                                                 cue_bonus, tool_prior, relevant_above)):
                stats.sampled += 1
                if token == ABSTAIN and teacher is None:
                    out[b], done[b] = grammars[b].closed_before_this_call() + [eos_id], True
                    stats.abstained += 1
                    continue
                if teacher is not None:
                    token = teacher[b][len(out[b])] if len(out[b]) < len(teacher[b]) else eos_id
                grammar = grammars[b] if grammars else None
                queue[b] = _advance(grammar, token, eos_id, stats) if grammar else [token]
        if B == 1:  # jump-forward: everything queued goes through the decoder at once
            feed, queue[0] = queue[0][:max_new - len(out[0])], []
        else:
            feed = [queue[b].pop(0) if not done[b] else pad_id for b in live]
        for j, b in enumerate(live):
            if not done[b]:
                new = feed if B == 1 else [feed[j]]
                out[b] += new
                done[b] = eos_id in new or len(out[b]) >= max_new
        if all(done):
            return out
        kept = [j for j, b in enumerate(live) if not done[b]]
        if (len(live) - len(kept)) * 4 >= len(live):  # a quarter of the session has finished: drop those rows
            sess, live, feed = sess.keep(kept), [live[j] for j in kept], [feed[j] for j in kept]
        h = engine.hidden(sess, torch.tensor([feed]) if B == 1 else torch.tensor(feed)[:, None])
        stats.decoder_calls += 1
