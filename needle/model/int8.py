"""Symmetric per-row int8 weights: one fp32 scale per output row (max-abs / 127).

Used twice: to ship compact checkpoints (`export_checkpoint(..., dtype="int8")`, dequantised on load) and by
the inference engine's int8 projections (needle/infer/quantize.py). A weight quantised, dequantised and
quantised again gives back the same int8 values, so shipping int8 costs int8 inference nothing more.
"""
from __future__ import annotations

import torch

SCALE_SUFFIX = ".int8_scale"  # checkpoint key of a quantised tensor's row scales


def quantize_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, K) float weights -> int8 (N, K) and fp32 scales (N,), with w ~= q * scale[:, None]."""
    w = w.float()
    scale = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12)
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.contiguous(), scale


def quantize_state(state: dict[str, torch.Tensor], min_numel: int = 4096) -> dict[str, torch.Tensor]:
    """Every floating matrix of at least min_numel entries as int8 plus a `<name>.int8_scale`; the rest
    (norm gains, gates, small heads) in fp32."""
    out = {}
    for name, t in state.items():
        if t.is_floating_point() and t.ndim == 2 and t.numel() >= min_numel:
            out[name], out[name + SCALE_SUFFIX] = quantize_rows(t)
        else:
            out[name] = t.float() if t.is_floating_point() else t
    return out


def dequantize_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of quantize_state: int8 tensors with scales back to fp32; anything else unchanged."""
    out = {k: v for k, v in state.items() if not k.endswith(SCALE_SUFFIX)}
    for key, scale in state.items():
        if key.endswith(SCALE_SUFFIX):
            name = key[:-len(SCALE_SUFFIX)]
            out[name] = out[name].float() * scale.float()[:, None]
    return out
