"""Training examples -> padded tensor batches, with length bucketing to keep padding small.

Two sources: tool-call examples (post-training, via the prompt layout in needle.data.format) and plain
text (pretraining: a text-to-text objective where the encoder reads a passage and the decoder writes
the passage that follows). Batch order is a pure function of (seed, epoch), and each example's
shuffling uses its own seeded RNG, so a resumed run sees exactly the batches it would have seen.
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from needle.data.format import EncodedExample, ToolsTooLong, encode_example
from needle.data.schema import Example


@dataclass
class Batch:
    enc_ids: torch.Tensor  # (B, S)
    enc_mask: torch.Tensor  # (B, S) True on real tokens
    dec_in: torch.Tensor  # (B, T)
    target: torch.Tensor  # (B, T)
    weights: torch.Tensor  # (B, T) 0 on padding

    @property
    def n_target_tokens(self) -> int:
        return int((self.weights > 0).sum())

    def to(self, device) -> "Batch":
        return Batch(*(t.to(device, non_blocking=True) for t in
                       (self.enc_ids, self.enc_mask, self.dec_in, self.target, self.weights)))


class ToolCallData:
    """Tool-call examples; examples that cannot fit the model's lengths are dropped and counted."""

    def __init__(self, examples: list[Example], tok, max_enc: int, max_dec: int, shuffle_orders: bool = True):
        self.tok, self.max_enc, self.max_dec, self.shuffle_orders = tok, max_enc, max_dec, shuffle_orders
        self.examples, self.lengths, self.dropped = [], [], []
        for ex in examples:
            try:
                e = encode_example(tok, ex, max_enc, max_dec)
            except ToolsTooLong as err:
                self.dropped.append(str(err))
                continue
            self.examples.append(ex)
            self.lengths.append(len(e.enc_ids) + len(e.dec_in))

    def __len__(self) -> int:
        return len(self.examples)

    def split(self, fraction: float) -> "ToolCallData":
        """Move the last `fraction` of examples (at least one) into a new dataset and return it."""
        n = max(1, int(len(self) * fraction))
        held = ToolCallData([], self.tok, self.max_enc, self.max_dec, shuffle_orders=False)
        held.examples, held.lengths = self.examples[-n:], self.lengths[-n:]
        self.examples, self.lengths = self.examples[:-n], self.lengths[:-n]
        return held

    def get(self, idx: int, seed: str) -> EncodedExample:
        rng = random.Random(f"{seed}/{idx}") if self.shuffle_orders else None
        return encode_example(self.tok, self.examples[idx], self.max_enc, self.max_dec, rng)


class TextData:
    """Plain text as (passage -> next passage) pairs over one token stream."""

    def __init__(self, files: list[str | Path], tok, enc_len: int, dec_len: int, max_tokens: int | None = None):
        self.tok, self.enc_len, self.dec_len = tok, enc_len, dec_len
        paras = [p.strip() + "\n\n" for f in files for p in Path(f).read_text(encoding="utf-8").split("\n\n")
                 if p.strip()]
        ids: list[int] = []
        for s in range(0, len(paras), 4096):  # batched encoding runs on every core
            for enc in tok.encode_batch(paras[s:s + 4096]):
                ids += enc
            if max_tokens and len(ids) >= max_tokens:
                break
        self.ids = ids[:max_tokens] if max_tokens else ids
        n = max(0, (len(ids) - enc_len - dec_len) // (enc_len + dec_len) + 1)
        self.lengths = [enc_len + dec_len + 1] * n
        self.first = 0  # index of this dataset's first window in the token stream

    def split(self, fraction: float) -> "TextData":
        """Move the last `fraction` of windows (at least one) into a new dataset sharing the token stream."""
        n = max(1, int(len(self) * fraction))
        held = copy.copy(self)  # shares the token stream
        held.lengths, held.first = self.lengths[-n:], self.first + len(self) - n
        self.lengths = self.lengths[:-n]
        return held

    def __len__(self) -> int:
        return len(self.lengths)

    def get(self, idx: int, seed: str) -> EncodedExample:
        s = (self.first + idx) * (self.enc_len + self.dec_len)
        enc = self.ids[s:s + self.enc_len]
        tgt = self.ids[s + self.enc_len:s + self.enc_len + self.dec_len]
        return EncodedExample(enc, [self.tok.eos_id] + tgt[:-1], tgt, [1.0] * len(tgt))


def bucket_batches(lengths: list[int], batch_tokens: int, seed: int, epoch: int, max_batch: int = 512) -> list[list[int]]:
    """Shuffle, sort within windows of similar length, cut into batches of at most `batch_tokens` padded tokens."""
    rng = random.Random(f"batches/{seed}/{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = 64 * max(1, batch_tokens // max(1, max(lengths, default=1)))
    batches: list[list[int]] = []
    for w in range(0, len(order), window):
        group = sorted(order[w:w + window], key=lambda i: lengths[i])
        cur: list[int] = []
        for i in group:
            if cur and ((len(cur) + 1) * lengths[i] > batch_tokens or len(cur) >= max_batch):
                batches.append(cur)
                cur = []
            cur.append(i)
        if cur:
            batches.append(cur)
    rng.shuffle(batches)
    return batches


def _round_up(n: int, multiple: int = 16) -> int:
    return -(-n // multiple) * multiple


def collate(items: list[EncodedExample], pad_id: int) -> Batch:
    # Lengths are rounded up to multiples of 16: a few distinct shapes let the CPU kernels
    # (oneDNN primitives) be reused instead of rebuilt for every new length.
    B = len(items)
    S = _round_up(max(len(e.enc_ids) for e in items))
    T = _round_up(max(len(e.dec_in) for e in items))
    enc = torch.full((B, S), pad_id, dtype=torch.long)
    dec = torch.full((B, T), pad_id, dtype=torch.long)
    tgt = torch.full((B, T), pad_id, dtype=torch.long)
    w = torch.zeros((B, T), dtype=torch.float32)
    for b, e in enumerate(items):
        enc[b, :len(e.enc_ids)] = torch.tensor(e.enc_ids)
        dec[b, :len(e.dec_in)] = torch.tensor(e.dec_in)
        tgt[b, :len(e.target)] = torch.tensor(e.target)
        w[b, :len(e.weights)] = torch.tensor(e.weights)
    mask = torch.arange(S)[None, :] < torch.tensor([len(e.enc_ids) for e in items])[:, None]
    return Batch(enc, mask, dec, tgt, w)


class BatchStream:
    """Endless batches for one rank; `position` (epoch, index) is all a resume needs."""

    def __init__(self, data, batch_tokens: int, seed: int, rank: int = 0, world: int = 1, epoch: int = 0, index: int = 0):
        if len(data) == 0:
            raise ValueError("no training examples left (all empty or too long for the model)")
        self.data, self.batch_tokens, self.seed, self.rank, self.world = data, batch_tokens, seed, rank, world
        self.epoch, self.index = epoch, index
        self._batches = self._epoch_batches()

    def _epoch_batches(self) -> list[list[int]]:
        all_b = bucket_batches(self.data.lengths, self.batch_tokens, self.seed, self.epoch)
        usable = max(1, len(all_b) // self.world) * self.world  # every rank gets the same number of steps
        return all_b[:usable][self.rank::self.world]

    @property
    def position(self) -> dict:
        return {"epoch": self.epoch, "index": self.index}

    def __iter__(self):
        return self

    def __next__(self) -> Batch:
        if self.index >= len(self._batches):
            self.epoch, self.index = self.epoch + 1, 0
            self._batches = self._epoch_batches()
        idxs = self._batches[self.index]
        self.index += 1
        seed = f"{self.seed}/{self.epoch}"
        return collate([self.data.get(i, seed) for i in idxs], self.data.tok.pad_id)
