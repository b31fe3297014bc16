"""Compact int8 checkpoints: a quarter of the bytes, loaded back as fp32, and what the int8 engine needs."""
import torch

from needle.infer.quantize import Projection
from needle.model.checkpoint import export_checkpoint, load_model
from needle.model.int8 import SCALE_SUFFIX, dequantize_state, quantize_rows, quantize_state


def test_int8_export_is_small_and_loads_close_to_the_original(tiny_checkpoint, tmp_path):
    out = export_checkpoint(tiny_checkpoint, tmp_path / "int8", "int8", max_shard_bytes=10 * 2**20)
    a, _ = load_model(tiny_checkpoint)
    b, _ = load_model(out)
    fp32_bytes = sum(p.numel() * 4 for p in a.parameters())
    assert sum(f.stat().st_size for f in out.glob("model-*.safetensors")) < 0.3 * fp32_bytes
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert pb.dtype == pa.dtype and pb.shape == pa.shape, name
        tol = pa.abs().amax(dim=-1, keepdim=True) / 254 + 1e-7 if pa.ndim == 2 else 0
        assert ((pa - pb).abs() <= tol).all(), name


def test_requantizing_shipped_int8_weights_is_exact():
    w = torch.randn(48, 64)
    q, s = quantize_rows(w)
    q2, s2 = quantize_rows(dequantize_state(quantize_state({"w": w}, min_numel=1))["w"])
    assert torch.equal(q, q2) and torch.allclose(s, s2)
    assert torch.equal(Projection(q.float() * s[:, None], "int8").q, q)


def test_small_and_one_dimensional_tensors_stay_fp32():
    state = quantize_state({"gain": torch.randn(64), "tiny": torch.randn(4, 4), "big": torch.randn(64, 64)})
    assert state["gain"].dtype == state["tiny"].dtype == torch.float32
    assert state["big"].dtype == torch.int8 and "big" + SCALE_SUFFIX in state
