"""Write generated data to disk: worker processes, `--shard i/n`, resume after a crash, held-out splits.

Output goes to `<out>.partial` chunk by chunk (a gzip member per chunk for .gz) with a progress file
recording the byte offset after each whole chunk; a rerun truncates to that offset and carries on,
and the finished file is renamed into place. `<out>.config.json` records the mix, seed and counts.
"""
from __future__ import annotations

import gzip
import json
import math
import multiprocessing as mp
import os
import time
from collections import Counter
from pathlib import Path

from needle.data.banks import SPLITS
from needle.data.generator import CHUNK, HELDOUT_MIX, GenConfig, Generator, chunk_examples

HELDOUT_SPLITS = tuple(s for s in SPLITS if s != "train")
_GEN: Generator | None = None


def _init(cfg: dict) -> None:
    global _GEN
    _GEN = Generator(GenConfig(**cfg))


def _make_chunk(job: tuple[int, int]) -> tuple[str, Counter]:
    chunk, count = job
    examples = chunk_examples(_GEN, chunk, count)
    lines = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples)
    return lines, Counter(e["meta"]["type"] for e in examples)


def parse_shard(text: str) -> tuple[int, int]:
    """'2/8' -> (2, 8); shards are 0-based."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"shard {text!r}: need 0 <= i < n")
    return i, n


def shard_jobs(num: int, shard: tuple[int, int]) -> list[tuple[int, int]]:
    """(chunk, count) pairs of this shard; the n shards together make exactly examples 0..num-1."""
    i, n = shard
    return [(c, min(CHUNK, num - c * CHUNK)) for c in range(math.ceil(num / CHUNK)) if c % n == i]


def _resume_point(partial: Path, progress: Path) -> tuple[int, int, Counter]:
    if not (partial.exists() and progress.exists()):
        return 0, 0, Counter()
    state = json.loads(progress.read_text())
    with open(partial, "r+b") as f:
        f.truncate(state["offset"])  # drop a half-written chunk
    return state["chunks"], state["offset"], Counter(state["types"])


def _save_progress(progress: Path, chunks: int, offset: int, types: Counter) -> None:
    tmp = progress.with_suffix(".tmp")
    tmp.write_text(json.dumps({"chunks": chunks, "offset": offset, "types": types}))
    os.replace(tmp, progress)


def write_dataset(cfg: GenConfig, num: int, output: str | Path, shard: tuple[int, int] = (0, 1),
                  workers: int = 0, progress_bar: bool = True) -> dict:
    """Generate `num` examples (this shard's part of them) into `output` (.jsonl or .jsonl.gz)."""
    from tqdm import tqdm
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial, progress = Path(f"{out}.partial"), Path(f"{out}.progress")
    jobs = shard_jobs(num, shard)
    done, offset, types = _resume_point(partial, progress)
    start, zipped = time.time(), out.name.endswith(".gz")
    workers = workers or min(os.cpu_count() or 1, 8)
    bar = tqdm(total=sum(c for _, c in jobs), initial=sum(c for _, c in jobs[:done]), unit="ex",
               disable=not progress_bar, desc=f"generate {cfg.split}", smoothing=0.1)
    with open(partial, "ab") as f, _pool(cfg, workers) as pool:
        f.seek(offset)
        for lines, counts in pool(_make_chunk, jobs[done:]):
            data = lines.encode("utf-8")
            f.write(gzip.compress(data, compresslevel=1, mtime=0) if zipped else data)
            f.flush()
            done, offset = done + 1, f.tell()
            types.update(counts)
            _save_progress(progress, done, offset, types)
            bar.update(sum(counts.values()))
    bar.close()
    os.replace(partial, out)
    progress.unlink()
    record = {"output": str(out), "examples": sum(types.values()), "shard": f"{shard[0]}/{shard[1]}",
              "seconds": round(time.time() - start, 1), "types": dict(sorted(types.items())), **cfg.to_dict()}
    Path(f"{out}.config.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


class _pool:
    """imap over worker processes, or a plain map when workers == 1 (easier to debug and profile)."""

    def __init__(self, cfg: GenConfig, workers: int):
        self.cfg, self.workers, self.pool = cfg.to_dict(), workers, None

    def __enter__(self):
        _init(self.cfg)  # in the parent first: bad settings fail here, and forked workers inherit the banks
        if self.workers > 1:
            self.pool = mp.get_context("fork" if os.name == "posix" else "spawn").Pool(
                self.workers, initializer=_init, initargs=(self.cfg,))
        return lambda fn, jobs: self.pool.imap(fn, jobs) if self.pool else map(fn, jobs)

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.terminate() if exc[0] else self.pool.close()
            self.pool.join()


def write_heldout(out_dir: str | Path, num: int, seed: int = 0, workers: int = 0,
                  progress_bar: bool = True) -> list[dict]:
    """The unseen-tool, unseen-phrasing and unseen-domain sets, `num` examples each, with the value pools they
    were first made with (GenConfig.open_values=False) and their first mix (HELDOUT_MIX), so that seed 0 always
    gives the same test sets."""
    return [write_dataset(GenConfig(split=s, seed=seed, open_values=False, mix=dict(HELDOUT_MIX)), num,
                          Path(out_dir) / f"{s}.jsonl", workers=workers, progress_bar=progress_bar)
            for s in HELDOUT_SPLITS]
