"""Greedy generation: encode -> prefill -> decode_one_token -> decode_n_tokens.

The encoder runs once, cross-attention K/V are computed once per query, and decoder self-attention
uses preallocated KV caches. `generate_naive` recomputes the whole decoder every token; it is kept on
purpose as the reference the cached path must match exactly (tests/test_generate.py).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

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
