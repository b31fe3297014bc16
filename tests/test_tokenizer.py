"""Tests for needle.tokenizer: special ids, exact round-trip, save/load, metadata."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from needle.tokenizer import (
    SPECIAL_TOKENS,
    Tokenizer,
    default_tokenizer_path,
    train_tokenizer,
)

SMALL_VOCAB = 400

CORPUS = [
    "What is the weather in Paris today?",
    "Set a timer for 15 minutes and remind me to call Alice.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    json.dumps([{"name": "get_weather", "parameters": {"city": {"type": "string"}}}],
               separators=(",", ":")),
    json.dumps([{"name": "set_timer", "arguments": {"minutes": 15}}], separators=(",", ":")),
    "Convert 3.5 kilometers to miles, then send the result to bob@example.com.",
] * 20

EXPLICIT_CASES = [
    "",
    " ",
    "   leading and trailing   ",
    "tabs\tand\nnewlines\r\nand\r carriage",
    "multiple     spaces    here",
    '{"a": "he said \\"hi\\"", "b": {"c": [1, 2, {"d": "\\\\n"}]}}',
    '{"path":"C:\\\\Users\\\\x","emoji":"\\ud83d\\ude00"}',
    "-3.14e10 +42 0.000001 1e-7 123456789012345678901234567890",
    "emoji 🤖🎉👩‍👩‍👧 and CJK 東京都 日本語 and Arabic مرحبا بالعالم",
    "combining e\u0301 a\u0308 and RTL \u200f mark, zero width \u200b joiner",
    "\x00\x01 control \x7f chars",
    "<tool_call>[{\"name\":\"f\",\"arguments\":{}}]<eos>",
    "not special: <tool> <tool_call <pad",
]


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return train_tokenizer(CORPUS, vocab_size=SMALL_VOCAB, sources=["unit-test corpus"])


def test_vocab_size_exact(tok):
    assert tok.vocab_size == SMALL_VOCAB


def test_special_ids(tok):
    ids = [tok.pad_id, tok.eos_id, tok.bos_id, tok.unk_id, tok.tool_call_id, tok.tools_id]
    assert ids == list(range(6))
    for i, special in enumerate(SPECIAL_TOKENS):
        assert tok.encode(special) == [i]
        assert tok.decode([i]) == special


def test_special_not_split_in_text(tok):
    ids = tok.encode("a<tool_call>b")
    assert tok.tool_call_id in ids
    assert ids.count(tok.tool_call_id) == 1
    assert tok.decode(ids) == "a<tool_call>b"
    ids = tok.encode("x <tools>[]<eos>")
    assert tok.tools_id in ids and tok.eos_id in ids


def test_no_bos_eos_added(tok):
    ids = tok.encode("hello")
    assert tok.bos_id not in ids and tok.eos_id not in ids


@pytest.mark.parametrize("text", EXPLICIT_CASES)
def test_round_trip_explicit(tok, text):
    assert tok.decode(tok.encode(text)) == text


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_round_trip_property(tok, text):
    assert tok.decode(tok.encode(text)) == text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20), st.sampled_from(SPECIAL_TOKENS), st.text(max_size=20))
def test_round_trip_with_embedded_special(tok, left, special, right):
    text = left + special + right
    assert tok.decode(tok.encode(text)) == text
    assert SPECIAL_TOKENS.index(special) in tok.encode(text)


def test_digits_split_individually(tok):
    ids = tok.encode("12345")
    assert len(ids) == 5


def test_encode_batch_matches_encode(tok):
    assert tok.encode_batch(EXPLICIT_CASES) == [tok.encode(t) for t in EXPLICIT_CASES]


def test_save_load_keeps_metadata_and_ids(tok, tmp_path):
    path = tmp_path / "sub" / "tokenizer.json"
    tok.save(path)
    assert list(path.parent.iterdir()) == [path]  # temp file was renamed away
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["needle_metadata"]["sources"] == ["unit-test corpus"]

    loaded = Tokenizer.from_file(path)
    assert loaded.metadata == tok.metadata
    assert loaded.metadata["vocab_size"] == SMALL_VOCAB
    assert {"version", "date", "sources"} <= loaded.metadata.keys()
    assert loaded.vocab_size == tok.vocab_size
    assert loaded.tool_call_id == tok.tool_call_id
    for text in EXPLICIT_CASES:
        assert loaded.encode(text) == tok.encode(text)


def test_too_small_corpus_rejected():
    with pytest.raises(ValueError):
        train_tokenizer(["ab"], vocab_size=1000)


@pytest.mark.skipif(not default_tokenizer_path().exists(), reason="no shipped tokenizer yet")
def test_shipped_tokenizer():
    shipped = Tokenizer.from_file(default_tokenizer_path())
    assert shipped.vocab_size == 8192
    for i, special in enumerate(SPECIAL_TOKENS):
        assert shipped.token_to_id(special) == i
    for text in EXPLICIT_CASES:
        assert shipped.decode(shipped.encode(text)) == text
