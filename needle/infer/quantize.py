"""Weight-only int8 quantization for CPU inference, and the projections the fast engine multiplies by.

int8 weights carry one fp32 scale per output row (needle/model/int8.py). PyTorch's
`_weight_int8pack_mm` multiplies bf16 activations by them directly; at batch 1 it reads a quarter of the
fp32 bytes and is the fastest matrix-vector product we measured here (12 us for 1024x512 against 27 us
in fp32). The decoder's 15M per-token weights then fit in a 32 MB L3 cache.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from needle.model.int8 import quantize_rows

WEIGHT_KINDS = ("fp32", "bf16", "int8")


class Projection:
    """y = x @ W^T for 2-D x, with W stored as fp32, bf16 or int8 (then x is cast to bf16 and y is bf16)."""

    def __init__(self, w: torch.Tensor, kind: str):
        if kind not in WEIGHT_KINDS:
            raise ValueError(f"weights must be one of {', '.join(WEIGHT_KINDS)}, got {kind!r}")
        self.kind = kind
        if kind == "int8":
            self.q, scale = quantize_rows(w)
            self.scale = scale.to(torch.bfloat16)
        else:
            self.w = w.detach().to(torch.float32 if kind == "fp32" else torch.bfloat16).contiguous()

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32 if self.kind == "fp32" else torch.bfloat16

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "int8":
            return torch.ops.aten._weight_int8pack_mm(x, self.q, self.scale)
        return F.linear(x, self.w)

    def rows(self, idx: torch.Tensor) -> "Projection":
        """The projection restricted to output rows idx (for logits over a few allowed tokens)."""
        out = Projection.__new__(Projection)
        out.kind = self.kind
        if self.kind == "int8":
            out.q, out.scale = self.q.index_select(0, idx), self.scale.index_select(0, idx)
        else:
            out.w = self.w.index_select(0, idx)
        return out

    def nbytes(self) -> int:
        if self.kind == "int8":
            return self.q.numel() + self.scale.numel() * self.scale.element_size()
        return self.w.numel() * self.w.element_size()
