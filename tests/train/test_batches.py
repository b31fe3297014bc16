import pytest

from needle.data.procedural import generate_examples
from needle.data.schema import parse_example
from needle.train.batches import BatchStream, TextData, ToolCallData, bucket_batches, collate


def test_bucketing_respects_token_budget_and_covers_everything():
    lengths = [((i * 37) % 300) + 20 for i in range(2000)]
    batches = bucket_batches(lengths, 4096, seed=1, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(2000))
    assert all(len(b) * max(lengths[i] for i in b) <= 4096 or len(b) == 1 for b in batches)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.1 * sum(lengths)  # sorting within windows keeps padding small
    assert batches == bucket_batches(lengths, 4096, seed=1, epoch=0) != bucket_batches(lengths, 4096, seed=1, epoch=1)


def test_ranks_get_disjoint_equal_shares(tok):
    data = ToolCallData([parse_example(e) for e in generate_examples(200, seed=1)], tok, 512, 128)
    a, b = BatchStream(data, 2048, 0, rank=0, world=2), BatchStream(data, 2048, 0, rank=1, world=2)
    assert len(a._batches) == len(b._batches)
    assert not {i for x in a._batches for i in x} & {i for x in b._batches for i in x}


def test_split_and_collate(tok):
    data = ToolCallData([parse_example(e) for e in generate_examples(100, seed=2)], tok, 512, 128)
    val = data.split(0.1)
    assert len(val) == 10 and len(data) == 90
    batch = collate([val.get(i, "s") for i in range(3)], tok.pad_id)
    assert batch.enc_ids.shape[1] % 16 == 0 and batch.dec_in.shape == batch.target.shape == batch.weights.shape
    assert bool((batch.weights[batch.target == tok.pad_id] == 0).all())


def test_text_data_windows_and_split(tok, tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("\n\n".join(f"Line {i} of some text." for i in range(300)))
    data = TextData([f], tok, 16, 8)
    n = len(data)
    val = data.split(0.1)
    assert len(val) + len(data) == n
    first_val = val.get(0, "s")
    assert first_val.enc_ids == data.ids[(n - len(val)) * 24:(n - len(val)) * 24 + 16]
    assert first_val.dec_in[1:] == first_val.target[:-1]


def test_empty_data_is_a_clear_error(tok):
    with pytest.raises(ValueError, match="no training examples"):
        BatchStream(ToolCallData([], tok, 512, 128), 1024, 0)
