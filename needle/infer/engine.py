"""The fast inference engine: a Needle model's weights rearranged so each decoded token costs few operators.

At batch 1 a decode step is bound first by per-operator overhead, then by weight bytes. Same maths as
needle.model, with fewer of both:
- norm gains are folded into the projection after them, residual gates into the output projections,
  the cross-attention QK-norm gains and softmax scale into the cross keys (computed once per query);
- grouped-query attention runs as plain matmuls with the query heads of one K/V head stacked
  (about 2x SDPA on this CPU at these sizes); one-token RoPE is a 64x64 rotation matrix;
- weights `fp32` (reference maths), `bf16`, or `int8` (decoder and output head int8, encoder bf16:
  the encoder's many-row matmuls run fastest in bf16, the decoder's one-row ones in int8);
- `hidden()` returns final hidden states and `logits(h, rows)` computes only the vocabulary rows asked for.
tests/infer/test_engine.py holds it to the model's own forward pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from needle.infer.quantize import WEIGHT_KINDS, Projection
from needle.model.model import Needle, rope_tables


def _unit(x: torch.Tensor) -> torch.Tensor:
    """x / ||x|| over the last dim: RMSNorm up to a factor sqrt(dim), which the engine folds into the gain
    after it. Two kernels instead of rms_norm's six at one row (2.4 us against 6.9 us here); the epsilon
    inside RMSNorm changes results only for near-zero vectors, which trained activations never are."""
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True)


def _gain(norm) -> torch.Tensor:
    """The norm's gain times sqrt(dim): applied after `_unit` it makes the model's ZCRMSNorm."""
    return (1.0 + norm.weight.detach().float()) * math.sqrt(norm.weight.shape[0])


def _mm(w: Projection, x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """x (..., K) -> (rows, N) through projection w, cast to w's dtype and out to `dtype` (None: w's)."""
    y = w(x.reshape(-1, x.shape[-1]).to(w.dtype))
    return y if dtype is None or y.dtype == dtype else y.to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def rope_matrices(cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """(T, D) tables -> (T, D, D) matrices R with x @ R[t] == x * cos[t] + rotate_half(x) * sin[t]."""
    T, D = cos.shape
    eye = torch.eye(D)
    rot = _rotate_half(eye)  # row i of the identity, rotated: rotate_half is linear, so this is its matrix
    return eye[None] * cos[:, None, :] + rot[None] * sin[:, None, :]


class _Layer:
    """One attention sublayer's folded weights."""

    def __init__(self, gated, kind: str, cross: bool, scale: float, act: torch.dtype):
        attn, gain_in, gate = gated.sublayer, _gain(gated.norm), torch.sigmoid(gated.gate.detach().float())
        qg, kg = _gain(attn.q_norm), _gain(attn.k_norm)
        if cross:
            self.wq = Projection(attn.wq.weight.detach().float() * gain_in, kind)
            # runs once per query over every encoder position: bf16 unless the reference maths is asked for
            self.wkv = Projection(attn.wkv.weight.detach().float(), "fp32" if kind == "fp32" else "bf16")
            self.k_gain = qg * kg * scale  # both QK-norm gains and the softmax scale, folded into the keys
        else:
            self.wqkv = Projection(attn.wqkv.weight.detach().float() * gain_in, kind)
            # q rows carry the softmax scale; RoPE is linear, so scaling before it is the same
            n_q, n_kv = attn.n_heads, attn.n_kv
            self.qk_gain = torch.cat([(qg * scale).expand(n_q, -1), kg.expand(n_kv, -1)]).to(act)
        self.wo = Projection(attn.wo.weight.detach().float() * gate, kind)


@dataclass
class Session:
    """The state of one batch of queries: cross keys/values, self-attention caches, the next position."""
    cross: list[tuple[torch.Tensor, torch.Tensor]]  # per decoder layer: K, V (B, Hkv, S, D), fp32
    mem_mask: torch.Tensor | None  # (B, 1, 1, S) True on real encoder tokens; None when nothing is padded
    k_cache: list[torch.Tensor]  # per decoder layer (B, Hkv, L, D), fp32
    v_cache: list[torch.Tensor]
    pos: int = 0
    memory: torch.Tensor | None = None  # the encoder output (B, S, d), fp32: scoring after decoding reuses it

    @property
    def batch(self) -> int:
        return self.k_cache[0].shape[0]

    def keep(self, rows: list[int]) -> "Session":
        """The state of only these batch rows, in this order (a batch drops its finished rows). Encoder positions
        past the longest kept row go too: every later step reads less cross-attention memory."""
        idx = torch.tensor(rows)
        S = self.cross[0][0].shape[2]
        mask = None if self.mem_mask is None else self.mem_mask[idx]
        if mask is not None:
            S = int(mask.sum(-1).max())
            mask = None if bool(mask[..., :S].all()) else mask[..., :S]
        return Session([(k[idx, :, :S].contiguous(), v[idx, :, :S].contiguous()) for k, v in self.cross], mask,
                       [c[idx] for c in self.k_cache], [c[idx] for c in self.v_cache], self.pos,
                       None if self.memory is None else self.memory[idx, :S])


class Engine:
    """Inference-only view of a Needle model (which it does not modify); see the module docstring.

    Activations: the encoder runs in its weights' dtype (bf16 unless `fp32`); the decoder keeps fp32
    activations throughout (small attention and norm kernels are several times faster in fp32 at one
    row) and casts only the inputs of bf16/int8 matmuls."""

    def __init__(self, model: Needle, weights: str = "int8"):
        if weights not in WEIGHT_KINDS:
            raise ValueError(f"weights must be one of {', '.join(WEIGHT_KINDS)}, got {weights!r}")
        cfg = self.cfg = model.cfg
        self.weights = weights
        self.enc_dtype = torch.float32 if weights == "fp32" else torch.bfloat16
        scale = 1.0 / math.sqrt(cfg.head_dim)
        E = model.embed.weight.detach().float()
        self.embed = (E * math.sqrt(cfg.d_model)).contiguous()  # the input scaling folded into the table
        enc_kind = "fp32" if weights == "fp32" else "bf16"
        self.encoder = [_Layer(b.attn, enc_kind, False, scale, self.enc_dtype) for b in model.encoder]
        self.enc_gain = _gain(model.encoder_norm)
        self.dec_self = [_Layer(b.self_attn, weights, False, scale, torch.float32) for b in model.decoder]
        self.dec_cross = [_Layer(b.cross_attn, weights, True, scale, torch.float32) for b in model.decoder]
        self.head = Projection(E * _gain(model.decoder_norm), weights)
        cos, sin = rope_tables(cfg.head_dim, max(cfg.max_encoder_len, cfg.max_decoder_len), cfg.rope_theta)
        # (T, 1, D) tables broadcast over heads, in both activation dtypes
        self.rope_tables = {dt: (cos[:, None, :].to(dt), sin[:, None, :].to(dt)) for dt in (torch.float32, torch.bfloat16)}
        self.rope_mats = rope_matrices(cos[:cfg.max_decoder_len], sin[:cfg.max_decoder_len])
        self.causal = torch.ones(cfg.max_decoder_len, cfg.max_decoder_len, dtype=torch.bool).tril()

    def weight_bytes(self) -> dict[str, int]:
        """Bytes of weights read per query by the encoder and per decoded token by the decoder + head."""
        enc = sum(layer.wqkv.nbytes() + layer.wo.nbytes() for layer in self.encoder)
        dec = sum(s.wqkv.nbytes() + s.wo.nbytes() + c.wq.nbytes() + c.wo.nbytes()
                  for s, c in zip(self.dec_self, self.dec_cross))
        return {"encoder": enc, "decoder_per_token": dec + self.head.nbytes()}

    # ---- shared pieces -------------------------------------------------------------------------------
    def _rope(self, qk: torch.Tensor, pos: int) -> torch.Tensor:
        """Encoder: qk (B, S, H, D) from position pos -> rotated elementwise, in qk's dtype."""
        cos, sin = self.rope_tables[qk.dtype]
        T = qk.shape[1]
        return qk * cos[pos:pos + T] + _rotate_half(qk) * sin[pos:pos + T]

    def _qkv(self, layer: _Layer, x: torch.Tensor, pos: int, dtype: torch.dtype):
        """Encoder: x (B, S, d) fp32 residual -> q (B, S, H, D) and k, v (B, S, Hkv, D): normed, gained, rotated."""
        B, T, _ = x.shape
        H, Hkv, D = self.cfg.n_heads, self.cfg.n_kv_heads, self.cfg.head_dim
        qkv = _mm(layer.wqkv, _unit(x), dtype)  # (B*T, (H + 2Hkv) D)
        qk = self._rope(_unit(qkv[:, :(H + Hkv) * D].view(B, T, H + Hkv, D)) * layer.qk_gain, pos)
        return qk[:, :, :H], qk[:, :, H:], qkv[:, (H + Hkv) * D:].view(B, T, Hkv, D)

    # ---- encoder -------------------------------------------------------------------------------------
    @staticmethod
    def _attend_grouped(q, k, v, bias) -> torch.Tensor:
        """q (B, S, H, D), k/v (B, S, Hkv, D) -> (B*S, H*D). The H/Hkv query heads sharing a K/V head are
        stacked as rows of one matmul: in bf16 at a few hundred tokens, about 2x SDPA on this CPU."""
        B, S, H, D = q.shape
        Hkv = k.shape[2]
        rep = H // Hkv
        qg = q.reshape(B, S, Hkv, rep, D).permute(0, 2, 3, 1, 4).reshape(B, Hkv, rep * S, D)
        s = qg @ k.permute(0, 2, 3, 1)  # (B, Hkv, rep*S, S)
        if bias is not None:
            s = s + bias
        y = torch.softmax(s, dim=-1) @ v.transpose(1, 2)  # (B, Hkv, rep*S, D)
        return y.view(B, Hkv, rep, S, D).permute(0, 3, 1, 2, 4).reshape(B * S, H * D)

    @torch.inference_mode()
    def encode(self, enc_ids: torch.Tensor, enc_mask: torch.Tensor, max_len: int | None = None) -> Session:
        """Run the encoder and precompute every decoder layer's cross keys/values; caches hold max_len."""
        B, S = enc_ids.shape
        if S > self.cfg.max_encoder_len:
            raise ValueError(f"encoder input has {S} tokens, more than max_encoder_len={self.cfg.max_encoder_len}")
        padded = not bool(enc_mask.all())
        lengths = enc_mask.sum(1)
        if B > 1 and bool(lengths.min() > 0) and bool((enc_mask == (torch.arange(S)[None] < lengths[:, None])).all()):
            # Right-padded rows, each encoded alone at its own length: no attention over padding, and score
            # matrices of one row stay in cache. 150 validation prompts (median 652 tokens) in batches of 32:
            # 28 s as one masked batch, 13 s row by row. Padding positions repeat the row's last real one: masked
            # in cross-attention, but finite (a zero vector would give NaN keys after the key norm).
            memory = torch.empty(B, S, self.cfg.d_model)
            for b, n in enumerate(lengths.tolist()):
                memory[b, :n] = self._encode(enc_ids[b:b + 1, :n], None)[0]
                memory[b, n:] = memory[b, n - 1]
        else:
            bias = None
            if padded:
                bias = torch.zeros(B, 1, 1, S, dtype=self.enc_dtype).masked_fill_(~enc_mask[:, None, None, :],
                                                                                   float("-inf"))
            memory = self._encode(enc_ids, bias)
        L = max_len or self.cfg.max_decoder_len
        shape = (B, self.cfg.n_kv_heads, L, self.cfg.head_dim)
        return Session([self._cross_kv(layer, memory) for layer in self.dec_cross],
                       enc_mask[:, None, None, :] if padded else None,
                       [torch.empty(shape) for _ in self.dec_self], [torch.empty(shape) for _ in self.dec_self],
                       memory=memory)

    def _encode(self, enc_ids: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """The encoder stack: ids (B, S) -> memory (B, S, d); `bias` masks padded keys (None: no padding)."""
        B, S = enc_ids.shape
        x = F.embedding(enc_ids, self.embed)  # (B, S, d) fp32 residual stream
        for layer in self.encoder:
            q, k, v = self._qkv(layer, x, 0, self.enc_dtype)
            x = x + _mm(layer.wo, self._attend_grouped(q, k, v, bias), torch.float32).view(B, S, -1)
        return _unit(x) * self.enc_gain

    def _cross_kv(self, layer: _Layer, memory: torch.Tensor):
        B, S, _ = memory.shape
        k, v = _mm(layer.wkv, memory, torch.float32).view(B, S, 2, self.cfg.n_kv_heads, -1).unbind(2)
        k = _unit(k) * layer.k_gain
        return k.transpose(1, 2).contiguous(), v.transpose(1, 2).contiguous()  # (B, Hkv, S, D)

    # ---- decoder -------------------------------------------------------------------------------------
    @torch.inference_mode()
    def hidden(self, sess: Session, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) at positions sess.pos.. -> the last position's final hidden state (B, d), fp32.

        Advances sess.pos by T. Several tokens at once (a prefix, jump-forward) cost about one step."""
        B, T = tokens.shape
        pos, end = sess.pos, sess.pos + T
        if end > sess.k_cache[0].shape[2]:
            raise ValueError(f"decoder length {end} exceeds the cache of {sess.k_cache[0].shape[2]} positions")
        # new tokens see the cached prefix and each other causally
        causal = self.causal[pos:end, :end] if T > 1 else None
        x = F.embedding(tokens, self.embed)  # (B, T, d)
        for i, (sa, ca) in enumerate(zip(self.dec_self, self.dec_cross)):
            q, k, v = self._dec_qkv(sa, x, pos)
            kc, vc = sess.k_cache[i], sess.v_cache[i]
            kc[:, :, pos:end] = k.transpose(1, 2)
            vc[:, :, pos:end] = v.transpose(1, 2)
            y = F.scaled_dot_product_attention(q.transpose(1, 2), kc[:, :, :end], vc[:, :, :end], attn_mask=causal,
                                               scale=1.0, enable_gqa=True)  # scale folded into q
            x = x + _mm(sa.wo, y.transpose(1, 2).reshape(B, T, -1)).view(B, T, -1)  # bf16 + fp32 -> fp32
            x = x + self._cross(ca, sess.cross[i], x, sess.mem_mask).view(B, T, -1)  # bf16 + fp32 -> fp32
        sess.pos = end
        return _unit(x[:, -1])

    def _dec_qkv(self, layer: _Layer, x: torch.Tensor, pos: int):
        """Decoder q, k, v in fp32. The pre-norm's 1/||x|| cancels under the per-head QK-norms, so only v
        needs it, and the matmul runs on x itself: two operators fewer per layer at one row."""
        B, T, _ = x.shape
        H, Hkv, D = self.cfg.n_heads, self.cfg.n_kv_heads, self.cfg.head_dim
        qkv = _mm(layer.wqkv, x, torch.float32).view(B, T, -1)
        qk = _unit(qkv[..., :(H + Hkv) * D].view(B, T, H + Hkv, D)) * layer.qk_gain
        qk = qk @ self.rope_mats[pos:pos + T]  # RoPE: one (D, D) rotation per position, one matmul
        v = qkv[..., (H + Hkv) * D:] / torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        return qk[:, :, :H], qk[:, :, H:], v.view(B, T, Hkv, D)

    def _cross(self, layer: _Layer, kv, x: torch.Tensor, mem_mask) -> torch.Tensor:
        B, T, _ = x.shape
        # the pre-norm is a per-row scale, which the QK-norm of q undoes: no normalisation of x needed
        q = _unit(_mm(layer.wq, x, torch.float32).view(B, T, self.cfg.n_heads, -1))
        y = F.scaled_dot_product_attention(q.transpose(1, 2), kv[0], kv[1], attn_mask=mem_mask, scale=1.0,
                                           enable_gqa=True)  # gains and scale folded into the keys
        return _mm(layer.wo, y.transpose(1, 2).reshape(B, T, -1))

    def logits(self, h: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """h (B, d) -> fp32 logits (B, vocab), or (B, len(rows)) for just those vocabulary rows."""
        return _mm(self.head if rows is None else self.head.rows(rows), h, torch.float32)
