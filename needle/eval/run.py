"""`needle eval`: one harness for our checkpoints and for any competitor, same inputs, same scoring.

A runner turns (query, tools) requests into call lists (None when the output did not parse): the
in-process Predictor for a checkpoint, or an external command speaking `needle predict`'s line
protocol (`--predictor "CMD"`). Suites: BFCL (needle.eval.bfcl) and the generator's held-out splits.
"""
from __future__ import annotations

import json
import shlex
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from needle.data.schema import Tool, call_problems, read_jsonl_meta
from needle.eval.heldout import score_split

HELDOUT_SPLITS = ("unseen_tools", "unseen_phrasing", "unseen_domains")


class EvalError(RuntimeError):
    """An evaluation that cannot go on (a predictor died); the message says what happened."""


@dataclass
class Item:
    id: str
    query: str
    tools: list[Tool]
    expected: list[dict] | None = None
    kind: str = ""  # call type (held-out) or category (BFCL)
    extra: dict = field(default_factory=dict)


class ModelRunner:
    """A checkpoint, in process, batched (similar lengths together)."""

    def __init__(self, checkpoint: str | None, batch_size: int = 32, max_new_tokens: int = 256, preset: str = "",
                 device: str = "cpu", weights: str = "int8", grammar: bool = True, grounding: bool = True):
        from needle.infer.predict import (COPY_BONUS, CUE_BONUS, RELEVANCE_FLOOR, RELEVANT_ABOVE, TOOL_PRIOR,
                                          Predictor, random_checkpoint)
        if preset:  # random weights: the floor any trained model must beat
            checkpoint = random_checkpoint(preset)
        self.predictor = Predictor(checkpoint, device=device, batch_size=batch_size, max_new_tokens=max_new_tokens,
                                   weights=weights, grammar=grammar, copy_bonus=COPY_BONUS if grounding else 0.0,
                                   cue_bonus=CUE_BONUS if grounding else 0.0, drop_ungrounded=grounding,
                                   fill_enums=grounding, expand_lists=grounding,
                                   tool_prior=TOOL_PRIOR if grounding else 0.0,
                                   relevant_above=RELEVANT_ABOVE if grounding else 0.0,
                                   relevance_floor=RELEVANCE_FLOOR if grounding else None)
        self.name = f"random {preset}" if preset else str(self.predictor.path)
        self.batch = batch_size * 4  # several predictor batches per progress update

    def __call__(self, items: list[Item], bar) -> list[tuple[list[dict], bool]]:
        out = []
        for s in range(0, len(items), self.batch):
            chunk = items[s:s + self.batch]
            for p in self.predictor.predict([(it.query, it.tools) for it in chunk]):
                out.append((p.calls, p.parsed and not p.error))
            bar.update(len(chunk))
        return out


class CommandRunner:
    """An external predictor: JSON lines {"query", "tools"} in, one JSON list of calls per line out."""

    def __init__(self, command: str):
        self.command, self.name = command, command

    def __call__(self, items: list[Item], bar) -> list[tuple[list[dict], bool]]:
        proc = subprocess.Popen(shlex.split(self.command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, encoding="utf-8", bufsize=1)

        def feed():  # a writer thread, so a predictor that reads ahead never deadlocks on a full pipe
            try:
                for it in items:
                    proc.stdin.write(json.dumps({"query": it.query, "tools": [t.to_dict() for t in it.tools]},
                                                ensure_ascii=False) + "\n")
                proc.stdin.close()
            except BrokenPipeError:
                pass

        threading.Thread(target=feed, daemon=True).start()
        out = []
        for _ in items:
            line = proc.stdout.readline()
            if not line:
                proc.kill()
                raise EvalError(f"predictor {self.command!r} stopped after {len(out)} of {len(items)} answers "
                                   f"(exit code {proc.wait()})")
            out.append(_parse_line(line))
            bar.update(1)
        proc.wait()
        return out


def _parse_line(line: str) -> tuple[list[dict], bool]:
    """A predictor's answer line -> (calls, parsed); a line that is not a list of calls counts as no call."""
    try:
        calls = json.loads(line)
    except json.JSONDecodeError:
        return [], False
    if not isinstance(calls, list) or not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in calls):
        return [], False
    return [{"name": c["name"], "arguments": c.get("arguments") or {}} for c in calls], True


def validity(preds: list[tuple[list[dict], bool]], items: list[Item]) -> dict:
    """How many answers parsed and followed the offered schemas, of all items."""
    valid = sum(ok and not call_problems(calls, it.tools) for (calls, ok), it in zip(preds, items))
    return {"n": len(items), "parsed": sum(ok for _, ok in preds), "schema_valid": valid}


def run_items(runner, items: list[Item], desc: str) -> tuple[list, float]:
    """Predictions for every item, with a progress bar; also the wall seconds taken."""
    start = time.perf_counter()
    with tqdm(total=len(items), desc=desc, unit="q", dynamic_ncols=True) as bar:
        preds = runner(items, bar)
    return preds, time.perf_counter() - start


def load_heldout(path: Path, limit: int | None = None) -> list[Item]:
    items = []
    for i, (ex, meta) in enumerate(read_jsonl_meta(path)):
        items.append(Item(f"{path.stem}:{i}", ex.query, ex.tools, [c.to_dict() for c in ex.answers],
                          (meta or {}).get("type", "unknown")))
        if limit and len(items) >= limit:
            break
    return items


def ensure_heldout(data_dir: Path, num: int = 1000) -> None:
    """Generate the held-out splits into data_dir when they are missing (deterministic, seed 0)."""
    if all((data_dir / f"{s}.jsonl").is_file() for s in HELDOUT_SPLITS):
        return
    from needle.data.build import write_heldout
    write_heldout(data_dir, num, seed=0, workers=1, progress_bar=False)


def eval_heldout(runner, data_dir: Path, limit: int | None) -> dict:
    ensure_heldout(data_dir)
    results = {}
    for split in HELDOUT_SPLITS:
        items = load_heldout(data_dir / f"{split}.jsonl", limit)
        preds, secs = run_items(runner, items, split)
        rows = [(calls, ok, it.expected, it.kind, len(it.tools)) for (calls, ok), it in zip(preds, items)]
        results[split] = {**score_split(rows), "validity": validity(preds, items), "seconds": round(secs, 1)}
    return results


def eval_bfcl(runner, categories: list[str] | None, limit: int | None) -> dict:
    from needle.eval import bfcl
    per_cat, cat_secs, failed_parse, secs, valid = {}, {}, 0, 0.0, {"n": 0, "parsed": 0, "schema_valid": 0}
    items = bfcl.load_bfcl(categories, limit)
    for cat in dict.fromkeys(it.category for it in items):
        originals = [it for it in items if it.category == cat]
        cat_items = [Item(it.id, it.query, _tools(it.tools), it.answer, cat) for it in originals]
        preds, s = run_items(runner, cat_items, cat)
        secs += s
        cat_secs[cat] = round(s, 1)
        failed_parse += sum(not ok for _, ok in preds)
        for k, v in validity(preds, cat_items).items():
            valid[k] += v
        correct = sum(bfcl.score(orig, calls if ok else None)[0] for orig, (calls, ok) in zip(originals, preds))
        per_cat[cat] = (correct, len(originals))
    return {"categories": {c: {"correct": k, "total": n, "accuracy": k / n, "seconds": cat_secs[c]}
                           for c, (k, n) in per_cat.items()},
            "aggregates": bfcl.aggregates(per_cat), "failed_to_parse": failed_parse, "validity": valid,
            "seconds": round(secs, 1)}


def _tools(raw: list[dict]) -> list[Tool]:
    from needle.data.schema import parse_tools
    return parse_tools(raw, where="bfcl")
