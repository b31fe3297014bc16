"""Average checkpoints parameter by parameter (how the shipped phase 12 weights were made from two runs):

    python scripts/average_weights.py RUN_A RUN_B --out needle/assets/model            # int8, the shipped form
    python scripts/average_weights.py RUN_A RUN_B --out OUT --dtype bf16

Each source is a checkpoint directory, a run directory (its `latest`), or an export (sharded, int8 included).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from needle.model.checkpoint import CheckpointError, average_checkpoints  # noqa: E402

DTYPES = {"int8": "int8", "bf16": torch.bfloat16, "fp32": torch.float32}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", help="two or more checkpoints of one configuration")
    ap.add_argument("--out", required=True, help="folder for the averaged checkpoint (replaced atomically)")
    ap.add_argument("--dtype", default="int8", choices=DTYPES, help="weights written")
    args = ap.parse_args()
    try:
        out = average_checkpoints(args.checkpoints, args.out, DTYPES[args.dtype])
    except (CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"averaged {len(args.checkpoints)} checkpoints into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
