"""The Simple Attention Network: an encoder-decoder transformer made only of attention.

Reads top to bottom: norm -> RoPE -> attention (self and cross, grouped-query) -> KV cache ->
blocks -> model. No feed-forward blocks anywhere; every sublayer sits behind a pre-norm and a
learned scalar sigmoid gate. The token embedding is shared by encoder, decoder and output head.
The model never imports tokenizer or data code: it sees only token ids and masks.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from needle.model.config import NeedleConfig


class ZCRMSNorm(nn.Module):
    """Zero-centred RMSNorm: (1 + g) * x / rms(x); g starts at 0, statistics in fp32."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x.float(), (x.shape[-1],), 1.0 + self.weight.float(), self.eps).to(x.dtype)


def rope_tables(head_dim: int, max_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(max_len, dtype=torch.float64), inv_freq)  # (T, D/2)
    angles = torch.cat([angles, angles], dim=-1)  # (T, D), rotate-half layout
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: (B, H, T, D); cos/sin: (T, D)
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)


def attend(q, k, v, mask=None, is_causal: bool = False, expand_kv: bool | None = None) -> torch.Tensor:
    """Grouped-query scaled dot-product attention; q (B, H, T, D), k/v (B, Hkv, S, D).

    On CUDA with a mask, PyTorch documents `enable_gqa` for its flash and math kernels only, and flash takes
    no mask: the math kernel would materialise every score. So there K/V are repeated to H heads first and
    the memory-efficient kernel runs (`expand_kv`: None decides by device and mask).
    """
    if expand_kv is None:
        expand_kv = q.is_cuda and mask is not None
    if expand_kv and k.shape[1] != q.shape[1]:
        rep = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, enable_gqa=True)


class KVCache:
    """Preallocated self-attention keys/values for one decoder layer; `update` writes and returns the prefix."""

    def __init__(self, batch: int, n_kv_heads: int, max_len: int, head_dim: int, dtype, device):
        shape = (batch, n_kv_heads, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)

    def update(self, pos: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        end = pos + k.shape[2]
        self.k[:, :, pos:end] = k
        self.v[:, :, pos:end] = v
        return self.k[:, :, :end], self.v[:, :, :end]


class SelfAttention(nn.Module):
    """Grouped-query self-attention with QK-norm and RoPE; q, k, v in one fused projection."""

    def __init__(self, cfg: NeedleConfig):
        super().__init__()
        self.n_heads, self.n_kv, self.hd = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.wqkv = nn.Linear(cfg.d_model, (cfg.n_heads + 2 * cfg.n_kv_heads) * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.d_model, bias=False)
        self.q_norm = ZCRMSNorm(cfg.head_dim, cfg.norm_eps)
        self.k_norm = ZCRMSNorm(cfg.head_dim, cfg.norm_eps)

    def forward(self, x, cos, sin, mask=None, is_causal=False, cache: KVCache | None = None, pos: int = 0):
        B, T, _ = x.shape
        q, k, v = self.wqkv(x).split([self.n_heads * self.hd, self.n_kv * self.hd, self.n_kv * self.hd], -1)
        q = self.q_norm(q.view(B, T, self.n_heads, self.hd)).transpose(1, 2)  # (B, H, T, D)
        k = self.k_norm(k.view(B, T, self.n_kv, self.hd)).transpose(1, 2)  # (B, Hkv, T, D)
        v = v.view(B, T, self.n_kv, self.hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(pos, k, v)
            if T > 1:  # several new tokens at once: causal within them, full view of the cached prefix
                mask = torch.ones(T, pos + T, dtype=torch.bool, device=x.device).tril(diagonal=pos)
            is_causal = False
        y = attend(q, k, v, mask, is_causal)
        return self.wo(y.transpose(1, 2).reshape(B, T, self.n_heads * self.hd))


class CrossAttention(nn.Module):
    """Decoder-to-encoder attention with QK-norm, no RoPE; K/V are computed once per query via `memory_kv`."""

    def __init__(self, cfg: NeedleConfig):
        super().__init__()
        self.n_heads, self.n_kv, self.hd = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.wq = nn.Linear(cfg.d_model, cfg.n_heads * cfg.head_dim, bias=False)
        self.wkv = nn.Linear(cfg.d_model, 2 * cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.d_model, bias=False)
        self.q_norm = ZCRMSNorm(cfg.head_dim, cfg.norm_eps)
        self.k_norm = ZCRMSNorm(cfg.head_dim, cfg.norm_eps)

    def memory_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, S, _ = memory.shape
        k, v = self.wkv(memory).view(B, S, 2, self.n_kv, self.hd).unbind(2)
        return self.k_norm(k).transpose(1, 2), v.transpose(1, 2)  # (B, Hkv, S, D) each

    def forward(self, x, kv: tuple[torch.Tensor, torch.Tensor], mem_mask):
        B, T, _ = x.shape
        q = self.q_norm(self.wq(x).view(B, T, self.n_heads, self.hd)).transpose(1, 2)
        y = attend(q, kv[0], kv[1], mem_mask)
        return self.wo(y.transpose(1, 2).reshape(B, T, self.n_heads * self.hd))


class GatedResidual(nn.Module):
    """x + sigmoid(a) * sublayer(norm(x)), with one learned scalar `a` starting at 0 (gate 0.5)."""

    def __init__(self, cfg: NeedleConfig, sublayer: nn.Module):
        super().__init__()
        self.norm = ZCRMSNorm(cfg.d_model, cfg.norm_eps)
        self.sublayer = sublayer
        self.gate = nn.Parameter(torch.zeros(()))

    def forward(self, x, *args, **kwargs):
        return x + torch.sigmoid(self.gate).to(x.dtype) * self.sublayer(self.norm(x), *args, **kwargs)


class EncoderBlock(nn.Module):
    def __init__(self, cfg: NeedleConfig):
        super().__init__()
        self.attn = GatedResidual(cfg, SelfAttention(cfg))

    def forward(self, x, cos, sin, mask):
        return self.attn(x, cos, sin, mask=mask)


class DecoderBlock(nn.Module):
    def __init__(self, cfg: NeedleConfig):
        super().__init__()
        self.self_attn = GatedResidual(cfg, SelfAttention(cfg))
        self.cross_attn = GatedResidual(cfg, CrossAttention(cfg))

    def forward(self, x, cos, sin, cross_kv, mem_mask, cache=None, pos=0):
        x = self.self_attn(x, cos, sin, is_causal=cache is None, cache=cache, pos=pos)
        return self.cross_attn(x, cross_kv, mem_mask)


class RetrievalHead(nn.Module):
    """Mean-pooled encoder output -> 128-d unit vector, for CLIP-style query/tool matching."""

    def __init__(self, cfg: NeedleConfig):
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(cfg.d_model, cfg.retrieval_hidden), nn.ReLU(),
                                  nn.Linear(cfg.retrieval_hidden, cfg.retrieval_dim, bias=False))
        self.log_temperature = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def forward(self, memory: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        m = key_mask.unsqueeze(-1).to(memory.dtype)  # (B, S, 1)
        pooled = (memory * m).sum(1) / m.sum(1).clamp(min=1)
        return F.normalize(self.proj(pooled).float(), dim=-1)


class Needle(nn.Module):
    def __init__(self, cfg: NeedleConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.encoder = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.n_encoder_layers))
        self.encoder_norm = ZCRMSNorm(cfg.d_model, cfg.norm_eps)
        self.decoder = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.n_decoder_layers))
        self.decoder_norm = ZCRMSNorm(cfg.d_model, cfg.norm_eps)
        self.retrieval = RetrievalHead(cfg) if cfg.retrieval_head else None
        cos, sin = rope_tables(cfg.head_dim, max(cfg.max_encoder_len, cfg.max_decoder_len), cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        std, out_std = self.cfg.init_std, self.cfg.init_std / math.sqrt(2 * self.cfg.n_layers)
        nn.init.normal_(self.embed.weight, std=std)
        for name, p in self.named_parameters():
            if name.startswith("retrieval"):
                continue  # the head keeps PyTorch's default Linear init
            if name.endswith(("wqkv.weight", "wq.weight", "wkv.weight")):
                nn.init.normal_(p, std=std)
            elif name.endswith("wo.weight"):
                nn.init.normal_(p, std=out_std)

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embed(ids) * math.sqrt(self.cfg.d_model)

    def encode(self, enc_ids: torch.Tensor, enc_mask: torch.Tensor) -> torch.Tensor:
        """enc_ids, enc_mask: (B, S) with mask True on real tokens -> memory (B, S, d_model)."""
        S = enc_ids.shape[1]
        if S > self.cfg.max_encoder_len:
            raise ValueError(f"encoder input has {S} tokens, more than max_encoder_len={self.cfg.max_encoder_len}")
        x = self.embed_tokens(enc_ids)
        attn_mask = enc_mask[:, None, None, :]  # (B, 1, 1, S): every query sees the real keys
        cos, sin = self.rope_cos[:S], self.rope_sin[:S]
        for block in self.encoder:
            x = block(x, cos, sin, attn_mask)
        return self.encoder_norm(x)

    def cross_kv(self, memory: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        # The pre-norm of a cross-attention sublayer applies to the decoder stream (queries); the memory
        # is already normalised by the encoder's final norm.
        return [block.cross_attn.sublayer.memory_kv(memory) for block in self.decoder]

    def decode(self, dec_ids, cross_kv, enc_mask, caches: list[KVCache] | None = None, pos: int = 0) -> torch.Tensor:
        """dec_ids (B, T) at positions pos..pos+T-1 -> fp32 logits (B, T, vocab)."""
        T = dec_ids.shape[1]
        if pos + T > self.cfg.max_decoder_len:
            raise ValueError(f"decoder length {pos + T} exceeds max_decoder_len={self.cfg.max_decoder_len}")
        x = self.embed_tokens(dec_ids)
        cos, sin = self.rope_cos[pos:pos + T], self.rope_sin[pos:pos + T]
        mem_mask = enc_mask[:, None, None, :]
        for i, block in enumerate(self.decoder):
            x = block(x, cos, sin, cross_kv[i], mem_mask, cache=None if caches is None else caches[i], pos=pos)
        return self.logits(self.decoder_norm(x))

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        # NOTE: fp32 head even under autocast; bf16 logits lose the small margins greedy decoding relies on.
        with torch.autocast(device_type=h.device.type, enabled=False):
            return h.float() @ self.embed.weight.float().t()

    def forward(self, enc_ids, enc_mask, dec_ids, encoder_grad: bool = True) -> torch.Tensor:
        # encoder_grad=False: the encoder runs without autograd (decoder-only training; see freeze_encoder)
        with torch.set_grad_enabled(encoder_grad and torch.is_grad_enabled()):
            memory = self.encode(enc_ids, enc_mask)
        return self.decode(dec_ids, self.cross_kv(memory), enc_mask)

    def new_caches(self, batch: int, max_len: int | None = None, dtype=None, device=None) -> list[KVCache]:
        cfg = self.cfg
        dtype = dtype or self.embed.weight.dtype
        device = device or self.embed.weight.device
        return [KVCache(batch, cfg.n_kv_heads, max_len or cfg.max_decoder_len, cfg.head_dim, dtype, device)
                for _ in range(cfg.n_decoder_layers)]


GPU_PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense bf16 tensor cores (spec sheets)


def peak_bf16_flops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU named like torch.cuda.get_device_name(), for utilisation figures."""
    return next((v for k, v in GPU_PEAK_BF16_FLOPS.items() if k in device_name), None)


def step_flops(cfg: NeedleConfig, batch: int, enc_len: int, dec_len: int, train: bool = True,
               encoder_grad: bool = True) -> float:
    """Matmul FLOPs of one forward (x3 for forward + backward) over a padded (batch, enc_len, dec_len) batch;
    a frozen encoder (encoder_grad=False) runs forward only.

    Counts projections, attention scores and values (full squares, masked or not) and the output head:
    the work the kernels actually do, used for tokens/s -> model FLOPs utilisation.
    """
    d, hd, H, Hkv = cfg.d_model, cfg.head_dim, cfg.n_heads, cfg.n_kv_heads
    S, T = enc_len, dec_len
    self_proj = d * (H + 2 * Hkv) * hd + H * hd * d
    enc = cfg.n_encoder_layers * (S * self_proj + 2 * H * S * S * hd)
    cross = T * (d * H * hd + H * hd * d) + S * d * 2 * Hkv * hd + 2 * H * T * S * hd
    dec = cfg.n_decoder_layers * (T * self_proj + 2 * H * T * T * hd + cross)
    grad = 3 if train else 1
    return 2.0 * batch * (enc * (grad if encoder_grad else 1) + (dec + T * d * cfg.vocab_size) * grad)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
