"""Training throughput of a preset on this machine: forward + backward + AdamW step, random tokens.

Reports the median step time over repeats and tokens/s counting encoder + decoder tokens, e.g.
    python scripts/bench_train.py --preset 26m --batch 32 --enc-len 256 --dec-len 64 --threads 2
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from needle.model import Needle, NeedleConfig
from needle.train.batches import Batch
from needle.train.loop import weighted_loss
from needle.train.optim import make_optimizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="26m")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--enc-len", type=int, default=256)
    ap.add_argument("--dec-len", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--no-bf16", action="store_true")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model first")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Needle(NeedleConfig.from_name(args.preset))
    fwd = torch.compile(model) if args.compile else model
    opt = make_optimizer(model, 1e-4, 0.1)
    V, B, S, T = model.cfg.vocab_size, args.batch, args.enc_len, args.dec_len
    b = Batch(torch.randint(6, V, (B, S)), torch.ones(B, S, dtype=torch.bool), torch.randint(6, V, (B, T)),
              torch.randint(6, V, (B, T)), torch.ones(B, T))
    times = []
    for i in range(args.warmup + args.steps):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not args.no_bf16):
            logits = fwd(b.enc_ids, b.enc_mask, b.dec_in)
        loss, _ = weighted_loss(logits, b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= args.warmup:
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(json.dumps({"preset": args.preset, "batch": B, "enc_len": S, "dec_len": T, "bf16": not args.no_bf16,
                      "compile": args.compile, "threads": torch.get_num_threads(), "step_s_median": round(med, 3),
                      "tokens_per_s": round(B * (S + T) / med), "steps": args.steps}))


if __name__ == "__main__":
    main()
