"""End to end on a CPU in minutes: data -> tokenizer -> train `tiny` -> predict held-out -> exact match.

Uses the real commands (`needle train`, `needle predict`) the way a user would. The tokenizer is
trained on this run's training data plus the Python standard library's sources (text every machine
has, so a fresh clone reproduces the run) unless --shipped-tokenizer is given.
Passes when held-out exact match (same tools, unseen queries) reaches --target.
    python scripts/run_cpu.py [--out runs/e2e] [--steps 1400] [--target 0.9]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from needle.data.procedural import split_heldout
from needle.data.schema import write_jsonl
from needle.eval.metrics import exact_match
from needle.tokenizer import default_tokenizer_path, train_tokenizer

ROOT = Path(__file__).resolve().parent.parent
# Training over-samples "none" (half of them requests whose tool is absent: the hardest case for a small
# model, which must read the tool list rather than the query alone). Held-out data keeps the default mix.
TRAIN_MIX = (("single", 0.45), ("multi", 0.25), ("none", 0.27), ("no_tools", 0.03))


def stdlib_text(max_chars: int = 20_000_000):
    """General text present on every machine: the Python standard library's sources (docs, comments, code)."""
    total = 0
    for f in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        if "site-packages" in f.parts:
            continue
        text = f.read_text(encoding="utf-8", errors="replace")
        yield from text.split("\n\n")
        total += len(text)
        if total >= max_chars:
            return


def tokenizer_texts(examples: list[dict]):
    for ex in examples:
        yield ex["query"]
        yield json.dumps(ex["tools"], separators=(",", ":"), ensure_ascii=False)
        yield json.dumps(ex["answers"], separators=(",", ":"), ensure_ascii=False)
    # The generated data alone holds fewer than 8192 distinct merges; general text fills the vocabulary.
    yield from stdlib_text()


def step(msg: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/e2e")
    ap.add_argument("--train-examples", type=int, default=40000)
    ap.add_argument("--heldout-examples", type=int, default=200)
    ap.add_argument("--steps", type=int, default=1400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--shipped-tokenizer", action="store_true", help="use needle/assets/tokenizer.json")
    args = ap.parse_args()
    out, t0 = Path(args.out), time.perf_counter()

    train, heldout = split_heldout(args.train_examples, args.heldout_examples, seed=args.seed, train_mix=TRAIN_MIX)
    write_jsonl(train, out / "data/train.jsonl")
    write_jsonl(heldout, out / "data/heldout.jsonl")
    step(f"data: {len(train)} training and {len(heldout)} held-out examples over the same tools", t0)

    tok_path = default_tokenizer_path()
    if not args.shipped_tokenizer:
        tok_path = out / "tokenizer.json"
        sources = ["needle.data.procedural (this run's training data)",
                   f"Python {sys.version.split()[0]} standard library sources"]
        train_tokenizer(tokenizer_texts(train), 8192, sources=sources).save(tok_path)
    step(f"tokenizer: {tok_path}", t0)

    model_dir = out / "model"
    shutil.rmtree(model_dir, ignore_errors=True)  # a fresh run, not a resume of an older one
    cmd = ["needle", "train", str(ROOT / "configs/tiny_e2e.toml"), f"train_data=[\"{out / 'data/train.jsonl'}\"]",
           f"out_dir={model_dir}", f"tokenizer={tok_path}", f"max_steps={args.steps}", "resume=false"]
    subprocess.run(cmd, check=True)
    step(f"trained: {model_dir}", t0)

    requests = "".join(json.dumps({"query": ex["query"], "tools": ex["tools"]}) + "\n" for ex in heldout)
    res = subprocess.run(["needle", "predict", "--checkpoint", str(model_dir)], input=requests, capture_output=True,
                         text=True, check=True)
    preds = [json.loads(line) for line in res.stdout.splitlines()]
    hits = sum(exact_match(p, ex["answers"]) for p, ex in zip(preds, heldout))
    em = hits / len(heldout)
    step(f"predicted {len(preds)} held-out examples", t0)
    verdict = "PASS" if em >= args.target else "FAIL"
    print(f"held-out exact match: {em:.1%} ({hits}/{len(heldout)}); target >= {args.target:.0%}: {verdict}")
    return 0 if em >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
