"""Training batches generated on the fly: no stored data, examples made in DataLoader worker processes.

The generator's chunks are pure functions of (config, chunk index), so a worker turns chunk k into
length-bucketed batches, the loader hands whole chunks back in order, and `position` (chunk, batch
index) is all a resume needs. Rank r of w takes global chunks k * w + r: ranks never share examples.
"""
from __future__ import annotations

import random

from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from needle.data.format import ToolsTooLong, encode_example
from needle.data.generator import DEFAULT_MIX, DEFAULT_SOURCES, GenConfig, Generator, chunk_examples
from needle.data.schema import parse_example
from needle.tokenizer import Tokenizer
from needle.train.batches import ToolCallData, bucket_batches, collate

GEN_KEYS = {"seed", "mix", "sources", "max_tools", "confusable_p", "max_tool_chars", "respell_p", "coined_p",
            "workers", "val_examples"}


def gen_config(options: dict, seed_offset: int = 0) -> GenConfig:
    """GenConfig from a train config's [generate] table (which may also hold `workers`, `val_examples`). `mix` and
    `sources` weigh the kinds they name and leave the others at their defaults (0 leaves one out), as
    `needle generate-data --mix` does: `generate.mix.none=0.16` doubles the no-call share, it does not train on
    no-call requests alone."""
    unknown = set(options) - GEN_KEYS
    if unknown:
        raise ValueError(f"unknown [generate] keys {sorted(unknown)}; known: {sorted(GEN_KEYS)}")
    kw = {k: v for k, v in options.items() if k not in ("workers", "val_examples")}
    for key, default in (("mix", DEFAULT_MIX), ("sources", DEFAULT_SOURCES)):
        if key in kw:
            if not isinstance(kw[key], dict):
                raise ValueError(f"[generate] {key} must be a table of weights, got {kw[key]!r}")
            kw[key] = {**default, **kw[key]}
    cfg = GenConfig(**kw)
    cfg.seed += seed_offset
    return cfg


def chunk_batches(gen: Generator, tok, chunk: int, max_enc: int, max_dec: int, batch_tokens: int, seed: int):
    """Chunk `chunk` as collated batches (examples too long for the model are dropped)."""
    encoded = []
    for i, ex in enumerate(chunk_examples(gen, chunk)):
        try:
            encoded.append(encode_example(tok, parse_example(ex, validate=False), max_enc, max_dec,
                                          random.Random(f"{seed}/{chunk}/{i}")))
        except ToolsTooLong:
            continue
    lengths = [len(e.enc_ids) + len(e.dec_in) for e in encoded]
    return [collate([encoded[i] for i in idxs], tok.pad_id)
            for idxs in bucket_batches(lengths, batch_tokens, seed, epoch=chunk)]


class _Chunks(IterableDataset):
    def __init__(self, gen_cfg: GenConfig, tok_json: str, lengths: tuple, batch_tokens: int, seed: int,
                 rank: int, world: int, start: int):
        super().__init__()
        self.args = (gen_cfg, tok_json, lengths, batch_tokens, seed, rank, world, start)

    def __iter__(self):
        gen_cfg, tok_json, (max_enc, max_dec), batch_tokens, seed, rank, world, start = self.args
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        gen, tok = Generator(gen_cfg), Tokenizer.from_str(tok_json)
        k = start + wid  # workers take turns, so the loader yields chunks start, start+1, ... in order
        while True:
            yield k, chunk_batches(gen, tok, k * world + rank, max_enc, max_dec, batch_tokens, seed)
            k += nw


def _identity(x):
    return x


class GeneratedStream:
    """Endless batches from the generator for one rank; `position` is {"chunk", "index"}."""

    def __init__(self, options: dict, tok: Tokenizer, max_enc: int, max_dec: int, batch_tokens: int, seed: int,
                 rank: int = 0, world: int = 1, chunk: int = 0, index: int = 0):
        data = _Chunks(gen_config(options), tok.to_str(), (max_enc, max_dec), batch_tokens, seed, rank, world, chunk)
        workers = int(options.get("workers", 1))
        self.loader = iter(DataLoader(data, batch_size=None, num_workers=workers, collate_fn=_identity,
                                      prefetch_factor=2 if workers else None, persistent_workers=False))
        self.chunk, self.index, self.batches = chunk, index, []
        self._next_chunk(skip=index)

    def _next_chunk(self, skip: int = 0) -> None:
        self.chunk, self.batches = next(self.loader)
        self.index = skip

    @property
    def position(self) -> dict:
        return {"chunk": self.chunk, "index": self.index}

    def __iter__(self):
        return self

    def __next__(self):
        while self.index >= len(self.batches):
            self._next_chunk()
        batch = self.batches[self.index]
        self.index += 1
        return batch


def generated_val(options: dict, tok: Tokenizer, max_enc: int, max_dec: int) -> ToolCallData:
    """A fixed validation set from the generator with its own seed (never a training chunk)."""
    gen = Generator(gen_config(options, seed_offset=1_000_003))
    n = int(options.get("val_examples", 500))
    examples = [parse_example(e, validate=False) for e in chunk_examples(gen, 0, n)]
    return ToolCallData(examples, tok, max_enc, max_dec, shuffle_orders=False)
