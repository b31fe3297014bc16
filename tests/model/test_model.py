import math

import pytest
import torch

from needle.model import Needle, NeedleConfig, count_parameters
from needle.model.model import ZCRMSNorm, apply_rope, rope_tables


@pytest.mark.parametrize("retrieval, expected", [(False, 26_233_372), (True, 26_315_421)])
def test_26m_parameter_count_matches_spec(retrieval, expected):
    assert count_parameters(Needle(NeedleConfig.from_name("26m", retrieval_head=retrieval))) == expected


def test_config_rejects_unknown_keys_and_presets():
    with pytest.raises(ValueError, match="unknown model config keys"):
        NeedleConfig.from_name("tiny", d_modle=64)
    with pytest.raises(ValueError, match="unknown preset"):
        NeedleConfig.from_name("huge")


def test_config_round_trips_through_json(tmp_path):
    cfg = NeedleConfig.from_name("tiny", retrieval_head=True)
    cfg.save(tmp_path / "c.json")
    assert NeedleConfig.load(tmp_path / "c.json") == cfg


def test_initial_state_follows_spec():
    cfg = NeedleConfig.from_name("26m")
    m = Needle(cfg)
    norms = [p for n, p in m.named_parameters() if n.endswith("norm.weight")]
    gates = [p for n, p in m.named_parameters() if n.endswith("gate")]
    assert norms and all(float(p.detach().abs().max()) == 0 for p in norms)
    assert len(gates) == cfg.n_encoder_layers + 2 * cfg.n_decoder_layers and all(float(g.detach()) == 0 for g in gates)
    assert abs(m.embed.weight.std().item() - 0.02) < 1e-3
    wo = m.encoder[0].attn.sublayer.wo.weight
    assert abs(wo.std().item() - 0.02 / math.sqrt(40)) < 2e-4
    assert not any(n.endswith("bias") for n, _ in m.named_parameters())


def test_zcrmsnorm_is_scale_invariant_with_unit_rms():
    x = torch.randn(3, 7, 64) * 5
    y = ZCRMSNorm(64)(x)
    assert torch.allclose(y.pow(2).mean(-1), torch.ones(3, 7), atol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert ZCRMSNorm(64)(x.bfloat16()).dtype == torch.bfloat16


def test_rope_is_relative():
    cos, sin = rope_tables(16, 32, 10000.0)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
    def score(i, j):
        return (apply_rope(q, cos[i:i + 1], sin[i:i + 1]) * apply_rope(k, cos[j:j + 1], sin[j:j + 1])).sum()
    assert torch.allclose(score(3, 1), score(12, 10), atol=1e-5)


def test_encoder_ignores_padding(tiny_model):
    ids = torch.randint(6, 8192, (1, 9))
    mask = torch.ones(1, 9, dtype=torch.bool)
    padded = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], 1)
    pmask = torch.cat([mask, torch.zeros(1, 4, dtype=torch.bool)], 1)
    dec = torch.randint(6, 8192, (1, 5))
    with torch.no_grad():
        a = tiny_model(ids, mask, dec)
        b = tiny_model(padded, pmask, dec)
    assert torch.allclose(a, b, atol=1e-5)


def test_decoder_is_causal(tiny_model):
    enc, mask = torch.randint(6, 8192, (2, 8)), torch.ones(2, 8, dtype=torch.bool)
    dec = torch.randint(6, 8192, (2, 6))
    dec2 = dec.clone()
    dec2[:, 4:] = 7
    with torch.no_grad():
        assert torch.allclose(tiny_model(enc, mask, dec)[:, :4], tiny_model(enc, mask, dec2)[:, :4], atol=1e-5)


def test_bf16_autocast_gives_fp32_logits_close_to_fp32(tiny_model):
    enc, mask = torch.randint(6, 8192, (2, 8)), torch.ones(2, 8, dtype=torch.bool)
    dec = torch.randint(6, 8192, (2, 4))
    with torch.no_grad():
        ref = tiny_model(enc, mask, dec)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = tiny_model(enc, mask, dec)
    assert low.dtype == torch.float32
    assert (low - ref).abs().max() < 0.05 * ref.abs().max()


def test_retrieval_head_gives_unit_vectors():
    m = Needle(NeedleConfig.from_name("tiny", retrieval_head=True))
    enc, mask = torch.randint(6, 8192, (3, 8)), torch.ones(3, 8, dtype=torch.bool)
    emb = m.retrieval(m.encode(enc, mask), mask)
    assert emb.shape == (3, 128) and torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_too_long_inputs_raise_clear_errors(tiny_model):
    cfg = tiny_model.cfg
    with pytest.raises(ValueError, match="max_encoder_len"):
        tiny_model.encode(torch.zeros(1, cfg.max_encoder_len + 1, dtype=torch.long),
                          torch.ones(1, cfg.max_encoder_len + 1, dtype=torch.bool))


def test_attention_with_repeated_kv_heads_matches_grouped_query():
    """The CUDA path (K/V repeated to every head) computes what grouped-query attention does."""
    from needle.model.model import attend
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 8, 5, 16, generator=g), torch.randn(2, 4, 7, 16, generator=g),
               torch.randn(2, 4, 7, 16, generator=g))
    mask = torch.ones(2, 1, 1, 7, dtype=torch.bool)
    mask[1, ..., 5:] = False
    assert torch.allclose(attend(q, k, v, mask, expand_kv=True), attend(q, k, v, mask, expand_kv=False), atol=1e-6)
    assert torch.allclose(attend(q, k, v[:, :, :7], None, is_causal=False, expand_kv=True),
                          attend(q, k, v, None, expand_kv=False), atol=1e-6)


def test_step_flops_matches_pytorch_flop_counter():
    """Our FLOP formula (used for model FLOPs utilisation) against PyTorch's own count of one forward."""
    from torch.utils.flop_counter import FlopCounterMode

    from needle.model.model import step_flops
    cfg = NeedleConfig.from_name("tiny")
    model = Needle(cfg)
    B, S, T = 2, 48, 16
    ids, dec = torch.randint(0, cfg.vocab_size, (B, S)), torch.randint(0, cfg.vocab_size, (B, T))
    from torch.nn.attention import SDPBackend, sdpa_kernel
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:  # attention as counted matmuls
        model(ids, torch.ones(B, S, dtype=torch.bool), dec)
    counted = counter.get_total_flops()
    assert abs(step_flops(cfg, B, S, T, train=False) - counted) / counted < 0.02


def test_averaged_checkpoints_hold_the_mean_of_their_weights(tmp_path, tok):
    import json

    from needle.model.checkpoint import CheckpointError, average_checkpoints, load_model, save_checkpoint
    from needle.tokenizer import default_tokenizer_path
    srcs = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        srcs.append(save_checkpoint(tmp_path / f"m{seed}", Needle(NeedleConfig.from_name("tiny")),
                                    default_tokenizer_path(), {"step": seed}))
    out = average_checkpoints(srcs, tmp_path / "mean", torch.float32)
    (a, _), (b, _), (m, _) = (load_model(p) for p in (*srcs, out))
    for (k, x), y, z in zip(a.state_dict().items(), b.state_dict().values(), m.state_dict().values()):
        assert torch.allclose(z, (x + y) / 2, atol=1e-6), k
    meta = json.loads((out / "metadata.json").read_text())
    assert [x["step"] for x in meta["averaged_from"]] == [1, 2] and meta["step"] == 2
    assert average_checkpoints(srcs, tmp_path / "mean8").joinpath("model.safetensors.index.json").is_file()  # int8
    other = save_checkpoint(tmp_path / "small", Needle(NeedleConfig.from_name("tiny", d_model=64)),
                            default_tokenizer_path(), {})
    with pytest.raises(CheckpointError, match="different configurations"):
        average_checkpoints([srcs[0], other], tmp_path / "bad")
