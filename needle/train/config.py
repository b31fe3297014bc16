"""Run configuration: a TOML file (configs/*.toml) plus `key=value` overrides from the command line.

Unknown keys raise. `model.*` keys override the chosen preset's model configuration.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from needle.model.config import reject_unknown_keys


@dataclass
class TrainConfig:
    task: str = "posttrain"  # posttrain (tool calls) | pretrain (plain text -> next passage)
    preset: str = "tiny"
    model: dict = field(default_factory=dict)  # overrides of the preset
    init_from: str = ""  # a checkpoint to start from (pretrained weights); empty: random init
    tokenizer: str = ""  # tokenizer.json; empty: the one shipped in needle/assets
    train_data: list = field(default_factory=list)  # JSONL (posttrain) or .txt files (pretrain)
    generate: dict = field(default_factory=dict)  # posttrain on generated data instead: [generate] seed, mix, workers...
    val_data: list = field(default_factory=list)  # empty: hold out val_fraction of train_data
    val_fraction: float = 0.02
    text_enc_len: int = 256  # pretrain: encoder passage length in tokens
    text_dec_len: int = 64  # pretrain: decoder continuation length in tokens
    text_max_tokens: int = 0  # pretrain: cap on tokens read from text files (0: all)
    out_dir: str = "runs/default"
    max_steps: int = 1000
    time_limit_s: float = 0.0  # >0: stop after this many seconds of training; the lr decay follows elapsed time
    batch_tokens: int = 8192  # padded encoder+decoder tokens per batch and rank
    lr: float = 1e-3
    warmup_steps: int = 100
    decay_frac: float = 0.2
    final_lr_frac: float = 0.0
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    bf16: bool = True
    seed: int = 1234
    eval_every: int = 200
    eval_batches: int = 20
    save_every: int = 500
    keep_checkpoints: int = 2
    resume: bool = True
    threads: int = 0  # torch CPU threads (0: PyTorch's default)
    # Train the decoder (and the shared embedding) only: the encoder runs without autograd, so a step costs
    # about half (measured on this 2-core CPU, 12k-token batches: 3.8 s against 7.9 s). For CPU fine-tuning.
    freeze_encoder: bool = False
    compile: bool = False  # torch.compile the training forward (dynamic shapes); slower on this CPU (recompiles), untried on a GPU
    progress: bool = True

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        reject_unknown_keys(cls, d, "train config")
        cfg = cls(**d)
        if cfg.task not in ("posttrain", "pretrain"):
            raise ValueError(f"task must be 'posttrain' or 'pretrain', got {cfg.task!r}")
        return cfg

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def parse_override(item: str) -> tuple[list[str], object]:
    """'lr=3e-4' -> (['lr'], 0.0003); values are TOML literals, bare words are strings."""
    if "=" not in item:
        raise ValueError(f"override {item!r} must look like key=value")
    key, raw = item.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def load_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file not found: {p}")
        try:
            data = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{p}: invalid TOML: {e}") from None
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return TrainConfig.from_dict(data)
