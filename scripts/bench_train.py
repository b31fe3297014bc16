"""Training throughput of a preset on this machine: forward + backward + AdamW step, random tokens.

Reports the median step time over repeats, tokens/s counting encoder + decoder tokens, and on a GPU the
model FLOPs utilisation against its bf16 peak, e.g.
    python scripts/bench_train.py --preset 26m --batch 32 --enc-len 256 --dec-len 64 --threads 2
    python scripts/bench_train.py --device cuda --batch 128 --enc-len 752 --pad-frac 0.1 --profile prof.txt
--profile writes PyTorch's per-operator table (sorted by device time) of two more steps.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from needle.model import Needle, NeedleConfig
from needle.model.model import peak_bf16_flops, step_flops
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
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--pad-frac", type=float, default=0.0, help="mask this share of encoder positions as padding")
    ap.add_argument("--profile", default="", help="write a per-operator profile table to this file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    model = Needle(NeedleConfig.from_name(args.preset)).to(dev)
    fwd = torch.compile(model) if args.compile else model
    opt = make_optimizer(model, 1e-4, 0.1)
    V, B, S, T = model.cfg.vocab_size, args.batch, args.enc_len, args.dec_len
    mask = torch.ones(B, S, dtype=torch.bool)
    if args.pad_frac:
        mask[:, S - int(S * args.pad_frac):] = False
    b = Batch(torch.randint(6, V, (B, S)), mask, torch.randint(6, V, (B, T)),
              torch.randint(6, V, (B, T)), torch.ones(B, T)).to(dev)

    def step():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=not args.no_bf16):
            logits = fwd(b.enc_ids, b.enc_mask, b.dec_in)
        loss, _ = weighted_loss(logits, b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss.item()  # waits for the device

    times = []
    for i in range(args.warmup + args.steps):
        t = time.perf_counter()
        step()
        if i >= args.warmup:
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    flops = step_flops(model.cfg, B, S, T)
    peak = peak_bf16_flops(torch.cuda.get_device_name(0)) if dev.type == "cuda" else None
    print(json.dumps({"preset": args.preset, "device": str(dev), "batch": B, "enc_len": S, "dec_len": T,
                      "bf16": not args.no_bf16, "compile": args.compile, "threads": torch.get_num_threads(),
                      "step_s_median": round(med, 4), "tokens_per_s": round(B * (S + T) / med),
                      "tflops_per_s": round(flops / med / 1e12, 2), "mfu": round(flops / med / peak, 4) if peak else None,
                      "steps": args.steps}))
    if args.profile:
        from torch.profiler import ProfilerActivity, profile
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
        with profile(activities=acts) as prof:
            step()
            step()
        key = "cuda_time_total" if dev.type == "cuda" else "cpu_time_total"
        with open(args.profile, "w") as f:
            f.write(prof.key_averages().table(sort_by=key, row_limit=40, max_name_column_width=70) + "\n")


if __name__ == "__main__":
    main()
