"""Model configuration: one small dataclass and its presets.

`26m` is the product (SPEC §1, Needle 1); `tiny` trains in seconds on a CPU for tests.
Unknown keys raise, so a typo in a run config never silently changes the model.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path


def reject_unknown_keys(cls, d: dict, what: str) -> None:
    """Raise naming the keys of `d` that are not fields of dataclass `cls`."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown {what} keys: {unknown}; known: {sorted(known)}")


@dataclass(frozen=True)
class NeedleConfig:
    vocab_size: int = 8192
    d_model: int = 512
    n_heads: int = 8
    n_kv_heads: int = 4
    head_dim: int = 64
    n_encoder_layers: int = 12
    n_decoder_layers: int = 8
    max_encoder_len: int = 1024
    max_decoder_len: int = 512
    rope_theta: float = 10000.0
    norm_eps: float = 1e-6
    init_std: float = 0.02
    retrieval_head: bool = False
    retrieval_dim: int = 128
    retrieval_hidden: int = 128

    def __post_init__(self) -> None:
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.n_kv_heads})")
        if self.head_dim % 2:
            raise ValueError(f"head_dim must be even for RoPE, got {self.head_dim}")

    @property
    def n_layers(self) -> int:
        return self.n_encoder_layers + self.n_decoder_layers

    @classmethod
    def from_name(cls, name: str, **overrides) -> "NeedleConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
        return cls.from_dict({**PRESETS[name], **overrides})

    @classmethod
    def from_dict(cls, d: dict) -> "NeedleConfig":
        reject_unknown_keys(cls, d, "model config")
        return cls(**d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "NeedleConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


PRESETS: dict[str, dict] = {
    "26m": {},
    "tiny": dict(d_model=128, n_heads=4, n_kv_heads=2, head_dim=32,
                 n_encoder_layers=2, n_decoder_layers=2, max_encoder_len=512, max_decoder_len=128),
}
