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
from needle.model.model import Needle

WEIGHTS, CONFIG, TOKENIZER, METADATA = "model.safetensors", "config.json", "tokenizer.json", "metadata.json"


class CheckpointError(FileNotFoundError):
    pass


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    if path.exists():
        os.rename(path, old)
    os.rename(tmp, path)
    _fsync_dir(path.parent)
    shutil.rmtree(old, ignore_errors=True)
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
    missing = [f for f in (WEIGHTS, CONFIG, TOKENIZER) if not (path / f).is_file()]
    if missing:
        raise CheckpointError(f"{path} is not a Needle checkpoint (missing {', '.join(missing)})")
    return path


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Needle, Path]:
    """The model in eval mode and the resolved checkpoint directory (its tokenizer.json lies inside)."""
    path = resolve_checkpoint(path)
    model = Needle(NeedleConfig.load(path / CONFIG))
    state = load_file(path / WEIGHTS, device=str(device))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.to(device).eval(), path


def read_metadata(path: str | Path) -> dict:
    f = Path(path) / METADATA
    return json.loads(f.read_text()) if f.is_file() else {}


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    steps = sorted(p for p in Path(run_dir).glob("step_*") if p.is_dir())
    for p in steps[:-keep] if keep > 0 else []:
        shutil.rmtree(p, ignore_errors=True)
