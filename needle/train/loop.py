"""The training loop: one flat loop for pretraining and post-training, under `python` or `torchrun`.

DDP is detected from the environment (gloo on CPU, nccl on CUDA). Loss: cross-entropy weighted per
token (name 2.0, key 1.5, value 4.0, other 1.0) and normalised by the number of target tokens.
Checkpoints carry optimizer state, data position and RNG state, so a resumed run continues exactly.
Validation also reports token accuracy on argument values and tool names alone (told apart by their loss
weights): the value accuracy is the one that shows whether the model copies from the request.
"""
from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file
from tqdm import tqdm

from needle.data.format import NAME, ROLE_WEIGHTS, VALUE
from needle.data.schema import read_jsonl
from needle.model.checkpoint import load_model, prune_checkpoints, resolve_checkpoint, save_checkpoint, write_latest
from needle.model.config import NeedleConfig
from needle.model.model import Needle, count_parameters, step_flops
from needle.tokenizer import Tokenizer, default_tokenizer_path
from needle.train.batches import Batch, BatchStream, TextData, ToolCallData, bucket_batches, collate
from needle.train.config import TrainConfig
from needle.train.optim import load_optimizer_tensors, make_optimizer, optimizer_tensors, set_lr, wsd_lr


def setup_distributed() -> tuple[int, int, torch.device]:
    if "RANK" not in os.environ:
        return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", 0))
    if cuda:
        torch.cuda.set_device(local)
    return dist.get_rank(), dist.get_world_size(), torch.device(f"cuda:{local}" if cuda else "cpu")


def weighted_loss(logits: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of weighted token losses / number of target tokens; also the count of correct argmax tokens."""
    ce = F.cross_entropy(logits.flatten(0, 1), batch.target.flatten(), reduction="none")
    mask = batch.weights.flatten() > 0
    loss = (ce * batch.weights.flatten()).sum() / mask.sum().clamp(min=1)
    correct = ((logits.argmax(-1).flatten() == batch.target.flatten()) & mask).sum()
    return loss, correct


def build_data(cfg: TrainConfig, tok: Tokenizer, mcfg: NeedleConfig):
    """Training and validation data; without val_data, the last val_fraction of train_data is held out.

    With [generate], training data is made on the fly (train is None) and validation is generated too."""
    if cfg.generate and cfg.task == "posttrain" and not cfg.train_data:
        from needle.train.stream import generated_val
        val = load_examples(cfg.val_data, tok, mcfg) if cfg.val_data else None
        return None, val or generated_val(cfg.generate, tok, mcfg.max_encoder_len, mcfg.max_decoder_len)
    if not cfg.train_data:
        raise ValueError("train_data is empty: give at least one file (or a [generate] table for posttrain)")
    if cfg.task == "pretrain":
        train = TextData(cfg.train_data, tok, cfg.text_enc_len, cfg.text_dec_len, cfg.text_max_tokens or None)
        val = TextData(cfg.val_data, tok, cfg.text_enc_len, cfg.text_dec_len) if cfg.val_data else train.split(cfg.val_fraction)
        return train, val
    train = load_examples(cfg.train_data, tok, mcfg)
    return train, load_examples(cfg.val_data, tok, mcfg) if cfg.val_data else train.split(cfg.val_fraction)


def load_examples(files: list, tok: Tokenizer, mcfg: NeedleConfig) -> ToolCallData:
    return ToolCallData([ex for f in files for ex in read_jsonl(f)], tok, mcfg.max_encoder_len, mcfg.max_decoder_len)


def make_stream(cfg: TrainConfig, train_data, tok: Tokenizer, mcfg: NeedleConfig, rank: int, world: int, position: dict):
    """Batches for this rank, from files (BatchStream) or from the generator (GeneratedStream)."""
    if train_data is None:
        from needle.train.stream import GeneratedStream
        pos = position if "chunk" in position else {}
        return GeneratedStream(cfg.generate, tok, mcfg.max_encoder_len, mcfg.max_decoder_len, cfg.batch_tokens,
                               cfg.seed, rank, world, **pos)
    pos = position if "epoch" in position else {}
    return BatchStream(train_data, cfg.batch_tokens, cfg.seed, rank, world, **pos)


ROLE_ACCURACY = {"val_value_acc": ROLE_WEIGHTS[VALUE], "val_name_acc": ROLE_WEIGHTS[NAME]}


@torch.no_grad()
def evaluate(model, data, cfg: TrainConfig, device) -> dict:
    """Validation loss and token accuracy; for tool calls also the accuracy on value and on name tokens."""
    model.eval()
    tot_loss = tot_correct = tot_n = 0.0
    roles = {key: [0, 0] for key in ROLE_ACCURACY}  # key -> [correct, tokens]
    for idxs in bucket_batches(data.lengths, cfg.batch_tokens, cfg.seed, epoch=0)[:cfg.eval_batches]:
        b = collate([data.get(i, f"{cfg.seed}/val") for i in idxs], data.tok.pad_id).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = model(b.enc_ids, b.enc_mask, b.dec_in)
        loss, correct = weighted_loss(logits, b)
        n = b.n_target_tokens
        tot_loss, tot_correct, tot_n = tot_loss + loss.item() * n, tot_correct + correct.item(), tot_n + n
        hit = logits.argmax(-1) == b.target
        for key, weight in ROLE_ACCURACY.items():
            mask = b.weights == weight
            roles[key][0] += int((hit & mask).sum())
            roles[key][1] += int(mask.sum())
    model.train()
    out = {"val_loss": tot_loss / max(tot_n, 1), "val_token_acc": tot_correct / max(tot_n, 1)}
    return out | {key: c / n for key, (c, n) in roles.items() if n}  # text pretraining has neither role


def build_model(cfg: TrainConfig, vocab_size: int) -> Needle:
    if cfg.init_from:
        model, _ = load_model(cfg.init_from)
        return model.train()
    mcfg = NeedleConfig.from_name(cfg.preset, **cfg.model)
    if mcfg.vocab_size != vocab_size:
        raise ValueError(f"model vocab_size {mcfg.vocab_size} != tokenizer vocab size {vocab_size}")
    return Needle(mcfg)


def save(cfg, model, opt, tok_path, stream, step, state) -> None:
    name = f"step_{step:07d}"
    run = Path(cfg.out_dir)
    meta = {"train_config": cfg.to_dict(), "step": step, "tokens_seen": state["tokens"], "params": count_parameters(model),
            "val": state.get("val", {}), "elapsed_s": state["elapsed"], "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if cfg.generate:  # what the generator was actually given (a partial mix is filled in from the defaults)
        from needle.train.stream import gen_config
        meta["generator"] = gen_config(cfg.generate).to_dict()
    trainer = {"step": step, "position": stream.position, "tokens": state["tokens"], "elapsed": state["elapsed"],
               "flops": state.get("flops", 0.0),
               "python_random": json.loads(json.dumps(random.getstate()))}
    save_checkpoint(run / name, model, tok_path, meta, tensors={
        "optimizer.safetensors": optimizer_tensors(opt, model),
        "rng.safetensors": {"torch": torch.get_rng_state()}}, json_files={"trainer_state.json": trainer})
    write_latest(run, name)
    prune_checkpoints(run, cfg.keep_checkpoints)


def try_resume(cfg, model, opt) -> dict | None:
    run = Path(cfg.out_dir)
    if not (cfg.resume and (run / "latest").is_file()):
        return None
    ckpt = resolve_checkpoint(run)
    model.load_state_dict(load_file(ckpt / "model.safetensors"))
    load_optimizer_tensors(opt, model, load_file(ckpt / "optimizer.safetensors"))
    torch.set_rng_state(load_file(ckpt / "rng.safetensors")["torch"])
    state = json.loads((ckpt / "trainer_state.json").read_text())
    pr = state["python_random"]
    random.setstate((pr[0], tuple(pr[1]), pr[2]))
    return state


def train(cfg: TrainConfig) -> dict:
    """Run training to cfg.max_steps (resuming when out_dir has a checkpoint); returns the last metrics."""
    rank, world, device = setup_distributed()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    tok_path = Path(cfg.tokenizer) if cfg.tokenizer else default_tokenizer_path()
    if cfg.init_from:
        tok_path = resolve_checkpoint(cfg.init_from) / "tokenizer.json"
    tok = Tokenizer.from_file(tok_path)
    model = build_model(cfg, tok.vocab_size).to(device)
    if cfg.freeze_encoder:
        for p in [*model.encoder.parameters(), *model.encoder_norm.parameters()]:
            p.requires_grad_(False)  # left out of the optimizer; the tied embedding still learns via the decoder
    train_data, val_data = build_data(cfg, tok, model.cfg)
    opt = make_optimizer(model, cfg.lr, cfg.weight_decay)
    state = try_resume(cfg, model, opt) or {"step": 0, "position": {}, "tokens": 0, "elapsed": 0.0}
    stream = make_stream(cfg, train_data, tok, model.cfg, rank, world, state["position"])
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    if cfg.compile:
        ddp = torch.compile(ddp, dynamic=True)
    return _loop(cfg, model, ddp, opt, stream, val_data, tok_path, state, rank, world, device)


def _out_of_time(time_frac: float, world: int, device) -> bool:
    """Whether the time budget is spent; under DDP every rank stops when any rank is out of time."""
    if world == 1:
        return time_frac >= 1.0
    flag = torch.tensor([float(time_frac >= 1.0)], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def _loop(cfg, model, ddp, opt, stream, val_data, tok_path, state, rank, world, device) -> dict:
    bar = tqdm(total=cfg.max_steps, initial=state["step"], disable=rank != 0 or not cfg.progress,
               unit="step", dynamic_ncols=True, desc=cfg.task)
    log = Path(cfg.out_dir) / "metrics.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    metrics: dict = {}
    t_start = time.perf_counter() - state["elapsed"]
    state.setdefault("flops", 0.0)
    for step in range(state["step"], cfg.max_steps):
        time_frac = state["elapsed"] / cfg.time_limit_s if cfg.time_limit_s else None
        if time_frac is not None and _out_of_time(time_frac, world, device):
            if step > state["step"]:
                state["val"] = evaluate(model, val_data, cfg, device)
                metrics.update(state["val"])
                if rank == 0:
                    save(cfg, model, opt, tok_path, stream, step, state)
            break
        lr = wsd_lr(step, cfg.max_steps, cfg.lr, cfg.warmup_steps, cfg.decay_frac, cfg.final_lr_frac, time_frac)
        set_lr(opt, lr)
        t_data = time.perf_counter()
        cpu_b = next(stream)
        state["data_wait_s"] = state.get("data_wait_s", 0.0) + time.perf_counter() - t_data  # starved steps show here
        n_tokens = int(cpu_b.enc_mask.sum()) + cpu_b.n_target_tokens  # counted before the copy: no GPU sync
        state["flops"] += step_flops(model.cfg, *cpu_b.enc_ids.shape, cpu_b.dec_in.shape[1],
                                     encoder_grad=not cfg.freeze_encoder) * world
        b = cpu_b.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = ddp(b.enc_ids, b.enc_mask, b.dec_in, encoder_grad=not cfg.freeze_encoder)
        loss, _ = weighted_loss(logits, b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        state["tokens"] += n_tokens * world
        loss_value = loss.item()
        state["elapsed"] = time.perf_counter() - t_start
        metrics = {"step": step + 1, "loss": loss_value, "lr": lr, "grad_norm": gnorm.item(),
                   "tokens": state["tokens"], "tokens_per_s": state["tokens"] / max(state["elapsed"], 1e-9),
                   "flops": state["flops"], "flops_per_s": state["flops"] / max(state["elapsed"], 1e-9),
                   "elapsed_s": round(state["elapsed"], 2), "data_wait_s": round(state["data_wait_s"], 2)}
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.max_steps:
            state["val"] = evaluate(model, val_data, cfg, device)
            metrics.update(state["val"])
        bar.set_postfix(loss=f"{metrics['loss']:.3f}", tok_s=f"{metrics['tokens_per_s']:.0f}", lr=f"{lr:.1e}")
        bar.update(1)
        if rank == 0:
            with open(log, "a") as f:
                f.write(json.dumps(metrics) + "\n")
            if (step + 1) % cfg.save_every == 0 or step + 1 == cfg.max_steps:
                save(cfg, model, opt, tok_path, stream, step + 1, state)
        if world > 1 and (step + 1) % cfg.save_every == 0:
            dist.barrier()
    bar.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return metrics
