"""Train the 26m preset on one GPU inside a fixed time budget, then export and evaluate it there.

One command for a lent GPU machine (no package registry; PyTorch, tokenizers, safetensors, numpy are
there, pure-Python extras travel as wheels):

    python scripts/gpu_train.py --out $OUT --budget 540

Phases, each logged with its wall time:
  1. smoke test: 24 post-training steps (data workers, CUDA, loss, a checkpoint save) - stops on failure;
     with --try-compile also the same steps under torch.compile, kept for the real run when faster;
  2. pretraining on plain text (configs/gpu_pretrain_26m.toml) for --pretrain-s seconds;
  3. post-training on generated tool calls (configs/gpu_posttrain_26m.toml) for what the budget leaves;
  4. export: bf16 weights in shards of at most 15 MiB plus an index (files that may leave the machine are
     limited to 16 MiB each), and a tarball of the small files (config, tokenizer, logs, results);
  5. evaluation on the GPU: the held-out splits and BFCL (when bfcl_eval is importable).

On a CPU it runs too (for checking the script before spending GPU time): --budget 120 --cpu-check uses
tiny batch sizes. Throughput and model FLOPs utilisation are written to summary.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUNS = ("gpu_smoke", "gpu_smoke_compile", "gpu_pretrain_26m", "gpu_posttrain_26m")  # run folders under runs/


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_train(config: str, overrides: list[str], logfile: Path, timeout: float | None = None) -> tuple[int, float]:
    """`needle train CONFIG overrides...` in a child process; returns (exit code, seconds); -9 when it ran
    past `timeout` seconds and was killed."""
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "needle.cli", "train", config, *overrides]
    log("$ " + " ".join(cmd[2:]))
    with open(logfile, "a") as f:
        try:
            rc = subprocess.call(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = -9
    secs = time.perf_counter() - t
    log(f"   exit {rc} after {secs:.0f} s")
    if rc:
        print(logfile.read_text()[-4000:], flush=True)
    return rc, secs


def read_metrics(run_dir: Path) -> list[dict]:
    f = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in f.read_text().splitlines()] if f.is_file() else []


def steady_rate(metrics: list[dict], skip: int = 4) -> dict:
    """Tokens/s and FLOP/s between step `skip` and the last step (start-up and compilation left out)."""
    if len(metrics) <= skip + 1:
        return {}
    a, b = metrics[skip], metrics[-1]
    dt = b["elapsed_s"] - a["elapsed_s"]
    if dt <= 0:
        return {}
    tps = (b["tokens"] - a["tokens"]) / dt
    fps = (b["flops"] - a["flops"]) / dt
    return {"tokens_per_s": round(tps), "flops_per_s": fps, "s_per_step": dt / (b["step"] - a["step"])}


def summarise(name: str, run_dir: Path, peak: float | None) -> dict:
    m = read_metrics(run_dir)
    if not m:
        return {"phase": name, "steps": 0}
    rate = steady_rate(m)
    out = {"phase": name, "steps": m[-1]["step"], "tokens": m[-1]["tokens"], "elapsed_s": m[-1]["elapsed_s"],
           "final_loss": round(m[-1]["loss"], 4), "data_wait_s": m[-1].get("data_wait_s"), **rate}
    vals = [x for x in m if "val_loss" in x]
    if vals:
        out["val"] = [{k: x[k] for k in ("step", "val_loss", "val_token_acc", "val_value_acc", "val_name_acc")
                       if k in x} for x in vals]
    if peak and rate:
        out["mfu"] = round(rate["flops_per_s"] / peak, 4)
    log(f"   {name}: {json.dumps(out)}")
    return out


def pack_small(out: Path, export: Path, work: Path) -> None:
    """config/tokenizer/index/metadata of the export and every log and result, in one tarball."""
    tmp = out / ".small.tar.gz.tmp"
    with tarfile.open(tmp, "w:gz") as tar:
        for f in sorted(export.glob("*")):
            if not f.name.endswith(".safetensors"):
                tar.add(f, arcname=f"model/{f.name}")
        for f in sorted(work.glob("*")):
            if f.is_file():
                tar.add(f, arcname=f"logs/{f.name}")
        for run in RUNS:
            mf = ROOT / "runs" / run / "metrics.jsonl"
            if mf.is_file():
                tar.add(mf, arcname=f"logs/{run}.metrics.jsonl")
    os.replace(tmp, out / "small.tar.gz")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for the exported weights and logs")
    ap.add_argument("--budget", type=float, default=540, help="seconds for everything, start to finish")
    ap.add_argument("--pretrain-s", type=float, default=45, help="seconds of text pretraining (0: none)")
    ap.add_argument("--reserve-s", type=float, default=75, help="seconds kept for export and evaluation")
    ap.add_argument("--try-compile", action="store_true", help="also smoke-test torch.compile; keep it if faster")
    ap.add_argument("--compile-timeout-s", type=float, default=150,
                    help="give up on the compiled smoke test after this many seconds")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 4), help="data worker processes")
    ap.add_argument("--profile", action="store_true",
                    help="first measure one synthetic training step (scripts/bench_train.py) and profile its operators")
    ap.add_argument("--init", default="",
                    help="post-train from this checkpoint (no pretraining; smoke tests only with --try-compile)")
    ap.add_argument("--posttrain", nargs="*", default=[], help="extra key=value overrides for post-training")
    ap.add_argument("--no-eval", action="store_true", help="skip the evaluation phase")
    ap.add_argument("--cpu-check", action="store_true", help="tiny batches, for trying the script on a CPU")
    args = ap.parse_args()
    t0 = time.perf_counter()
    out = Path(args.out)  # only the files that come back: shards and one tarball
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / "needle_gpu_train"
    shutil.rmtree(scratch, ignore_errors=True)
    work = scratch / "work"
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True)
    import torch
    cuda = torch.cuda.is_available()
    gpu = torch.cuda.get_device_name(0) if cuda else "none"
    from needle.model.model import peak_bf16_flops
    peak = peak_bf16_flops(gpu)
    env = {"torch": torch.__version__, "gpu": gpu, "cpus": os.cpu_count(), "peak_bf16_flops": peak}
    log(f"environment: {json.dumps(env)}")
    summary: dict = {"environment": env, "phases": []}
    small = (["preset=tiny", "batch_tokens=8192", "eval_batches=2", "generate.val_examples=50"]
             if args.cpu_check else [])
    common = [f"generate.workers={args.workers}"] + small
    for run in RUNS:
        shutil.rmtree(ROOT / "runs" / run, ignore_errors=True)

    if args.profile:
        cmd = [sys.executable, "scripts/bench_train.py", "--batch", "8" if args.cpu_check else "128",
               "--enc-len", "256" if args.cpu_check else "752", "--dec-len", "64", "--pad-frac", "0.1", "--steps", "3",
               "--profile", str(work / "profile.txt")] + (["--preset", "tiny"] if args.cpu_check else [])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
        log(f"bench_train: {res.stdout.strip() or res.stderr[-2000:]}")
        summary["bench_train"] = res.stdout.strip()
    if args.init and not args.try_compile:
        return posttrain_export_eval(args, t0, out, scratch, work, summary, small, common, [], peak, cuda,
                                     f"init_from={args.init}")
    # 1. smoke test (from --init's weights when given, so that the compiled and eager steps compare like for like)
    smoke = [f"init_from={args.init}", "out_dir=runs/gpu_smoke", "max_steps=24", "eval_every=24", "save_every=24",
             "time_limit_s=0", *common]
    rc, _ = run_train("configs/gpu_posttrain_26m.toml", smoke, work / "smoke.log")
    if rc:
        log("smoke test failed: stopping")
        return 1
    eager = summarise("smoke", ROOT / "runs/gpu_smoke", peak)
    summary["phases"].append(eager)
    use_compile = False
    if args.try_compile:
        rc, _ = run_train("configs/gpu_posttrain_26m.toml",
                          [*smoke[:1], "out_dir=runs/gpu_smoke_compile", *smoke[2:], "compile=true"],
                          work / "smoke_compile.log", timeout=args.compile_timeout_s)
        comp = summarise("smoke_compile", ROOT / "runs/gpu_smoke_compile", peak)
        summary["phases"].append(comp)
        use_compile = rc == 0 and comp.get("s_per_step", 1e9) < 0.85 * eager.get("s_per_step", 0)
        log(f"torch.compile {'kept' if use_compile else 'not kept'}")
    extra = ["compile=true"] if use_compile else []
    if args.init:
        return posttrain_export_eval(args, t0, out, scratch, work, summary, small, common, extra, peak, cuda,
                                     f"init_from={args.init}")

    # 2. pretraining
    init = "init_from=runs/gpu_pretrain_26m"
    if args.pretrain_s > 0:
        rc, _ = run_train("configs/gpu_pretrain_26m.toml", [f"time_limit_s={args.pretrain_s}", *small, *extra],
                          work / "pretrain.log")
        summary["phases"].append(summarise("pretrain", ROOT / "runs/gpu_pretrain_26m", peak))
        if rc:
            log("pretraining failed: post-training starts from random weights")
            init = "init_from="
    else:
        init = "init_from="

    return posttrain_export_eval(args, t0, out, scratch, work, summary, small, common, extra, peak, cuda, init)


def posttrain_export_eval(args, t0, out, scratch, work, summary, small, common, extra, peak, cuda, init) -> int:
    # 3. post-training, for what the budget leaves (its own start-up, ~15 s, included)
    left = args.budget - (time.perf_counter() - t0) - args.reserve_s - 15
    if left < 30:
        log(f"only {left:.0f} s left for post-training: stopping")
        return 1
    rc, _ = run_train("configs/gpu_posttrain_26m.toml", [init, f"time_limit_s={left:.0f}", *common, *extra, *args.posttrain],
                      work / "posttrain.log")
    summary["phases"].append(summarise("posttrain", ROOT / "runs/gpu_posttrain_26m", peak))
    (work / "summary.json").write_text(json.dumps(summary, indent=1))
    if rc and not (ROOT / "runs/gpu_posttrain_26m/latest").is_file():
        log("post-training failed before its first checkpoint")
        pack_small(out, out, work)
        return 1

    # 4. export
    from needle.model.checkpoint import export_checkpoint
    export = export_checkpoint(ROOT / "runs/gpu_posttrain_26m", scratch / "model_export")
    for f in export.glob("*.safetensors"):
        shutil.copyfile(f, out / f.name)
    pack_small(out, export, work)
    log(f"exported {sorted(p.name for p in export.iterdir())}")

    # 5. evaluation on this machine's GPU (or CPU), with what time is left
    if args.no_eval:
        return 0
    device = "cuda" if cuda else "cpu"
    batch = "512" if cuda else "32"
    lim = [] if cuda else ["--limit", "20"]
    suites = [("heldout", ["--data", str(scratch / "heldout")])]
    try:
        import bfcl_eval  # noqa: F401
        suites.append(("bfcl", []))
    except ImportError:
        log("bfcl_eval not importable: BFCL skipped")
    for suite, opts in suites:
        left = args.budget - (time.perf_counter() - t0)
        if left < 20:
            log(f"{left:.0f} s left: {suite} evaluation skipped")
            continue
        cmd = [sys.executable, "-m", "needle.cli", "eval", "--suite", suite, "--checkpoint", str(export),
               "--device", device, "--batch-size", batch, "--output", str(work / f"eval_{suite}.json"), *opts, *lim]
        t = time.perf_counter()
        with open(work / f"eval_{suite}.log", "w") as f:
            try:
                rc = subprocess.call(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, timeout=max(10, left - 5))
            except subprocess.TimeoutExpired:
                rc = "timeout"
        log(f"eval {suite}: exit {rc} after {time.perf_counter() - t:.0f} s")
        print((work / f"eval_{suite}.log").read_text()[-2500:], flush=True)
        pack_small(out, export, work)
    summary["total_s"] = round(time.perf_counter() - t0)
    (work / "summary.json").write_text(json.dumps(summary, indent=1))
    pack_small(out, export, work)
    log(f"done in {summary['total_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
