"""How often int8 / bf16 inference gives exactly the fp32 answer, on held-out examples.

    python scripts/weights_agreement.py --checkpoint DIR [--limit 100] [--data data/heldout]

Exact-text agreement of the generated answers, per split, plus exact match against the expected calls
for each weights setting (the grammar is on, as by default). Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from needle.eval.metrics import exact_match
from needle.eval.run import HELDOUT_SPLITS, ensure_heldout, load_heldout
from needle.infer.predict import Predictor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--data", default="data/heldout")
    args = ap.parse_args()
    ensure_heldout(Path(args.data))
    predictors = {w: Predictor(args.checkpoint, weights=w) for w in ("fp32", "bf16", "int8")}
    out = {}
    for split in HELDOUT_SPLITS:
        items = load_heldout(Path(args.data) / f"{split}.jsonl", args.limit)
        preds = {w: p.predict([(it.query, it.tools) for it in items]) for w, p in predictors.items()}
        answered = [i for i, p in enumerate(preds["fp32"]) if not p.error]
        out[split] = {"n": len(items), "answered": len(answered)}
        for w in ("bf16", "int8"):
            same = sum(preds[w][i].text == preds["fp32"][i].text for i in answered)
            out[split][f"{w}_same_text_as_fp32"] = same / max(len(answered), 1)
        for w, ps in preds.items():
            out[split][f"{w}_exact_match"] = sum(exact_match(p.calls, it.expected) for p, it in zip(ps, items)) / len(items)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
