"""Checkpoints are plain directories: model.safetensors, config.json, tokenizer.json, metadata.json.

Training runs add optimizer.safetensors and trainer_state.json for exact resume. Nothing is ever
unpickled. A directory is written under a temporary name and renamed into place, so a crash mid-save
leaves the previous checkpoint intact. A run directory holds step_NNNNNNN/ checkpoints and a `latest`
file naming the newest; loading a run directory follows it.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from needle.model.config import NeedleConfig
from needle.model.int8 import dequantize_state, quantize_state
from needle.model.model import Needle

WEIGHTS, CONFIG, TOKENIZER, METADATA = "model.safetensors", "config.json", "tokenizer.json", "metadata.json"
INDEX = "model.safetensors.index.json"  # sharded weights: {"weight_map": {tensor name: shard file}}


class CheckpointError(FileNotFoundError):
    pass


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_dir(tmp: Path, path: Path) -> None:
    """Put the finished directory `tmp` in place of `path`: the old one is renamed away first and removed
    last, so a crash leaves either the old or the new directory, never a half-written one."""
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    if path.exists():
        os.rename(path, old)
    os.rename(tmp, path)
    _fsync_dir(path.parent)
    shutil.rmtree(old, ignore_errors=True)


def save_checkpoint(path: str | Path, model: Needle, tokenizer_file: str | Path, metadata: dict,
                    tensors: dict[str, dict[str, torch.Tensor]] | None = None,
                    json_files: dict[str, dict] | None = None) -> Path:
    """Write a complete checkpoint directory atomically. `tensors`/`json_files`: extra files by name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, tmp / WEIGHTS, metadata={"format": "pt"})
    model.cfg.save(tmp / CONFIG)
    shutil.copyfile(tokenizer_file, tmp / TOKENIZER)
    (tmp / METADATA).write_text(json.dumps(metadata, indent=2, default=str) + "\n")
    for name, tdict in (tensors or {}).items():
        save_file({k: v.detach().contiguous().cpu() for k, v in tdict.items()}, tmp / name)
    for name, obj in (json_files or {}).items():
        (tmp / name).write_text(json.dumps(obj) + "\n")
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(tmp)
    replace_dir(tmp, path)
    return path


def write_latest(run_dir: str | Path, name: str) -> None:
    run_dir = Path(run_dir)
    tmp = run_dir / f".latest.tmp-{os.getpid()}"
    tmp.write_text(name + "\n")
    os.replace(tmp, run_dir / "latest")


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory, or a run directory whose `latest` file names one."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if (path / "latest").is_file():
        path = path / (path / "latest").read_text().strip()
    weights = WEIGHTS if (path / WEIGHTS).is_file() or not (path / INDEX).is_file() else INDEX
    missing = [f for f in (weights, CONFIG, TOKENIZER) if not (path / f).is_file()]
    if missing:
        raise CheckpointError(f"{path} is not a Needle checkpoint (missing {', '.join(missing)})")
    return path


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Needle, Path]:
    """The model in eval mode and the resolved checkpoint directory (its tokenizer.json lies inside)."""
    path = resolve_checkpoint(path)
    model = Needle(NeedleConfig.load(path / CONFIG))
    state = load_weights(path, device)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.to(device).eval(), path


def load_weights(path: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint directory: model.safetensors, or the shards its index names."""
    if (path / WEIGHTS).is_file():
        return dequantize_state(load_file(path / WEIGHTS, device=str(device)))
    index = json.loads((path / INDEX).read_text())
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(set(index["weight_map"].values())):
        state.update(load_file(path / shard, device=str(device)))
    missing = set(index["weight_map"]) - set(state)
    if missing:
        raise CheckpointError(f"{path}: shards lack tensors named in {INDEX}: {sorted(missing)[:3]}")
    return dequantize_state(state)


MAX_SHARD_BYTES = 15 * 2**20  # export shards stay under the 16 MiB a file may have to travel


def export_checkpoint(src: str | Path, dst: str | Path, dtype: torch.dtype | str = torch.bfloat16,
                      max_shard_bytes: int = MAX_SHARD_BYTES) -> Path:
    """Copy a checkpoint's weights (cast to `dtype`, or "int8": per-row int8 matrices, dequantised again on
    load) into shards of at most `max_shard_bytes`, with an index.

    For moving weights where files have a size limit, and for shipping compact weights in git; training
    state (optimizer, RNG) is left behind.
    """
    src = resolve_checkpoint(src)
    return _write_export(load_weights(src), src, dst, dtype, max_shard_bytes)


def _write_export(weights: dict[str, torch.Tensor], src: Path, dst: str | Path, dtype: torch.dtype | str,
                  max_shard_bytes: int, metadata: dict | None = None) -> Path:
    """`weights` in `dtype` as shards with an index, config and tokenizer from checkpoint `src`, and its
    metadata (or `metadata`, when given), written atomically to `dst`."""
    if dtype == "int8":
        state = {k: v.contiguous() for k, v in quantize_state(weights).items()}
    else:
        state = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in weights.items()}
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, t in state.items():
        nbytes = t.numel() * t.element_size()
        if nbytes > max_shard_bytes:
            raise ValueError(f"tensor {name} has {nbytes} bytes, more than a shard may hold ({max_shard_bytes})")
        if size + nbytes > max_shard_bytes and shards[-1]:
            shards.append({})
            size = 0
        shards[-1][name] = t
        size += nbytes
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weight_map = {}
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, tmp / fname, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, fname))
    total = sum(t.numel() * t.element_size() for t in state.values())
    (tmp / INDEX).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1))
    for f in (CONFIG, TOKENIZER, METADATA):
        if (src / f).is_file():
            shutil.copyfile(src / f, tmp / f)
    if metadata is not None:
        (tmp / METADATA).write_text(json.dumps(metadata, indent=2, default=str) + "\n")
    replace_dir(tmp, dst)
    return dst


def read_metadata(path: str | Path) -> dict:
    f = Path(path) / METADATA
    return json.loads(f.read_text()) if f.is_file() else {}


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    steps = sorted(p for p in Path(run_dir).glob("step_*") if p.is_dir())
    for p in steps[:-keep] if keep > 0 else []:
        shutil.rmtree(p, ignore_errors=True)


def average_checkpoints(srcs: list[str | Path], dst: str | Path, dtype: torch.dtype | str = "int8",
                        max_shard_bytes: int = MAX_SHARD_BYTES) -> Path:
    """The parameter-wise mean of checkpoints of one configuration (weight averaging, as shipped in phase 12),
    written to `dst` as export_checkpoint writes; metadata is the last one's, with `averaged_from`."""
    if len(srcs) < 2:
        raise ValueError(f"averaging needs at least two checkpoints, got {len(srcs)}")
    paths = [resolve_checkpoint(s) for s in srcs]
    if len({(p / CONFIG).read_text() for p in paths}) > 1:
        raise CheckpointError(f"checkpoints of different configurations cannot be averaged: {[str(p) for p in paths]}")
    states = [load_weights(p) for p in paths]
    mean = {k: sum(s[k].float() for s in states) / len(states) for k in states[0]}
    meta = read_metadata(paths[-1])
    meta["averaged_from"] = [{"path": str(p), **{k: v for k, v in read_metadata(p).items() if k != "train_config"}}
                             for p in paths]
    return _write_export(mean, paths[-1], dst, dtype, max_shard_bytes, meta)
