"""The fast engine against the model's own forward pass, and fast generation against the reference decoder."""
import copy

import pytest
import torch

from needle.infer.engine import Engine, Session
from needle.infer.generate import generate, generate_fast, pad_batch
from needle.infer.quantize import Projection
from needle.model.int8 import quantize_rows
from needle.model import Needle, NeedleConfig


@pytest.fixture(scope="module")
def shaped_model(tiny_model) -> Needle:
    """The tiny model with non-trivial norm gains and residual gates, so every folding is exercised."""
    m = copy.deepcopy(tiny_model)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in m.parameters():
            if p.ndim <= 1:
                p.add_(torch.randn(p.shape, generator=g) * 0.3)
    return m


def _batch(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids, mask = pad_batch([torch.randint(6, 8192, (n,), generator=g).tolist() for n in lengths], 0)
    dec = torch.randint(6, 8192, (len(lengths), 7), generator=g)
    return ids, mask, dec


@pytest.mark.parametrize("lengths", [[40], [40, 25, 9]])
def test_fp32_engine_matches_model_forward(shaped_model, lengths):
    ids, mask, dec = _batch(lengths)
    with torch.inference_mode():
        ref = shaped_model(ids, mask, dec)  # (B, 7, vocab)
    e = Engine(shaped_model, "fp32")
    sess = e.encode(ids, mask, max_len=16)
    # a 4-token prefix, then one token, then two at once (the jump-forward shape)
    for start, end in [(0, 4), (4, 5), (5, 7)]:
        logits = e.logits(e.hidden(sess, dec[:, start:end]))
        torch.testing.assert_close(logits, ref[:, end - 1], atol=2e-4, rtol=1e-4)
    assert sess.pos == 7


def test_padded_rows_are_encoded_one_by_one_at_their_own_length(shaped_model):
    """A right-padded batch gives each row what encoding it alone gives; padding positions stay finite (they are
    masked in cross-attention, but a NaN key would poison it); a mask that is not right padding is still honoured."""
    ids, mask, dec = _batch([40, 25, 9])
    e = Engine(shaped_model, "fp32")
    sess = e.encode(ids, mask, max_len=8)
    for b, n in enumerate([40, 25, 9]):
        alone = e.encode(ids[b:b + 1, :n], mask[b:b + 1, :n], max_len=8)
        torch.testing.assert_close(sess.memory[b, :n], alone.memory[0], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(sess.memory).all() and all(torch.isfinite(k).all() for k, _ in sess.cross)
    left = torch.flip(mask, [1])  # left padding: the masked batch path
    flipped = e.encode(torch.flip(ids, [1]), left, max_len=8)
    torch.testing.assert_close(flipped.memory[2, -9:], e.encode(torch.flip(ids, [1])[2:3, -9:], left[2:3, -9:],
                                                                 max_len=8).memory[0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("weights", ["bf16", "int8"])
def test_low_precision_engines_stay_close(shaped_model, weights):
    ids, mask, dec = _batch([30, 12])
    with torch.inference_mode():
        ref = shaped_model(ids, mask, dec)[:, -1]
    e = Engine(shaped_model, weights)
    sess = e.encode(ids, mask, max_len=8)
    logits = e.logits(e.hidden(sess, dec))
    assert (logits - ref).abs().max() < 0.05 * ref.abs().max()


def test_logits_for_chosen_rows_only(shaped_model):
    ids, mask, dec = _batch([20])
    for weights in ("fp32", "int8"):
        e = Engine(shaped_model, weights)
        h = e.hidden(e.encode(ids, mask, max_len=8), dec[:, :3])
        rows = torch.tensor([3, 77, 4000, 8191])
        torch.testing.assert_close(e.logits(h, rows), e.logits(h)[:, rows])


@pytest.mark.parametrize("lengths", [[13], [5, 17, 9, 30]])
def test_fast_greedy_equals_reference_decoder(shaped_model, lengths):
    ids, mask, dec = _batch(lengths, seed=3)
    prefix = torch.tensor([[1, 4]] * len(lengths))
    ref = generate(shaped_model, ids, mask, prefix, 20, eos_id=-1, pad_id=0).tolist()
    fast = generate_fast(Engine(shaped_model, "fp32"), ids, mask, prefix, 20, eos_id=-1, pad_id=0)
    assert fast == ref


def test_fast_generation_stops_rows_at_eos(shaped_model):
    ids, mask, _ = _batch([6, 11, 20], seed=3)
    prefix = torch.tensor([[1, 4]] * 3)
    free = generate(shaped_model, ids, mask, prefix, 16, eos_id=-1, pad_id=0)
    row = free[1].tolist()
    i = max(j for j in range(len(row)) if row[j] not in row[:j])  # the last token row 1 writes for the first time
    eos = row[i]
    fast = generate_fast(Engine(shaped_model, "fp32"), ids, mask, prefix, 16, eos_id=eos, pad_id=0)
    assert fast[1] == row[:i + 1]  # row 1 ends with its eos
    assert all(len(r) == 16 or (r[-1] == eos and eos not in r[:-1]) for r in fast)


@pytest.mark.parametrize("rows", [[2, 0], [3, 1], [1]])
def test_a_session_keeps_rows_and_cuts_encoder_positions_past_the_longest(shaped_model, rows):
    """Finished rows leave a batch (generate_fast): the rows kept go on exactly as in the whole batch."""
    ids, mask, dec = _batch([5, 17, 9, 30], seed=3)
    e = Engine(shaped_model, "fp32")
    whole = e.encode(ids, mask, max_len=8)
    e.hidden(whole, dec[:, :3])
    part = whole.keep(rows)
    longest = int(mask[rows].sum(1).max())
    assert part.batch == len(rows) and part.pos == 3 and part.cross[0][0].shape[2] == longest
    assert (part.mem_mask is None) == bool(mask[rows, :longest].all())
    h_whole = e.hidden(whole, dec[:, 3:5])
    h_part = e.hidden(part, dec[rows, 3:5])
    torch.testing.assert_close(h_part, h_whole[rows], rtol=1e-5, atol=1e-5)


def test_quantize_rows_error_is_within_half_a_step():
    w = torch.randn(64, 32)
    q, scale = quantize_rows(w)
    assert q.dtype == torch.int8
    assert ((q.float() * scale[:, None] - w).abs() <= scale[:, None] / 2 + 1e-6).all()
    x = torch.randn(3, 32)
    torch.testing.assert_close(Projection(w, "int8")(x.bfloat16()).float(), x @ w.t(), atol=0.1, rtol=0.05)


def test_engine_refuses_unknown_weights_and_long_inputs(shaped_model):
    with pytest.raises(ValueError, match="weights must be one of"):
        Engine(shaped_model, "int4")
    e = Engine(shaped_model, "fp32")
    too_long = torch.zeros(1, shaped_model.cfg.max_encoder_len + 1, dtype=torch.long)
    with pytest.raises(ValueError, match="max_encoder_len"):
        e.encode(too_long, torch.ones_like(too_long, dtype=torch.bool))
    sess = e.encode(torch.tensor([[7, 8]]), torch.tensor([[True, True]]), max_len=2)
    with pytest.raises(ValueError, match="exceeds the cache"):
        e.hidden(sess, torch.tensor([[1, 2, 3]]))
