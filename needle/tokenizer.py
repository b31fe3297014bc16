"""Byte-level BPE tokenizer for Needle (8192 entries, special tokens at ids 0..5).

Thin wrapper over HF `tokenizers` guaranteeing exact `decode(encode(s)) == s`
for any unicode string, with training metadata stored inside the single
tokenizer.json file under the top-level key "needle_metadata".
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

from tokenizers import Tokenizer as _HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>", "<tool_call>", "<tools>")
METADATA_KEY = "needle_metadata"
FORMAT_VERSION = "needle-bpe-1"


def default_tokenizer_path() -> Path:
    """The tokenizer shipped as package data."""
    return Path(__file__).resolve().parent / "assets" / "tokenizer.json"


def _pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    # Single digits stop BPE from merging arbitrary digit runs, which makes
    # copying numbers from query to arguments a per-digit task for the model.
    return pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])


class Tokenizer:
    """Needle tokenizer: encode/decode plus special ids and metadata."""

    def __init__(self, hf: _HFTokenizer, metadata: dict | None = None) -> None:
        self._hf = hf
        self.metadata: dict = dict(metadata or {})
        ids = [hf.token_to_id(tok) for tok in SPECIAL_TOKENS]
        if ids != list(range(len(SPECIAL_TOKENS))):
            raise ValueError(f"special tokens must have ids 0..5, got {ids}")
        (self.pad_id, self.eos_id, self.bos_id, self.unk_id,
         self.tool_call_id, self.tools_id) = ids

    @classmethod
    def from_str(cls, text: str) -> "Tokenizer":
        # HF rejects unknown top-level keys, so metadata is split off first.
        data = json.loads(text)
        metadata = data.pop(METADATA_KEY, {})
        return cls(_HFTokenizer.from_str(json.dumps(data)), metadata)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Tokenizer":
        return cls.from_str(Path(path).read_text(encoding="utf-8"))

    def to_str(self, with_metadata: bool = True) -> str:
        """tokenizer.json text; without metadata it is plain HF `tokenizers` JSON (for other libraries)."""
        if not with_metadata:
            return self._hf.to_str()
        data = json.loads(self._hf.to_str())
        data[METADATA_KEY] = self.metadata
        return json.dumps(data, ensure_ascii=False, indent=1)

    def save(self, path: str | os.PathLike) -> None:
        """Atomic write: readers never see a half-written tokenizer."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.to_str())
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; a shipped file should be world-readable
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    @property
    def vocab_size(self) -> int:
        return self._hf.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        # No post-processor is configured, so no bos/eos are added here.
        return self._hf.encode(text, add_special_tokens=False).ids

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and each token's (start, end) character span in `text`."""
        enc = self._hf.encode(text, add_special_tokens=False)
        return enc.ids, enc.offsets

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        encs = self._hf.encode_batch(list(texts), add_special_tokens=False)
        return [e.ids for e in encs]

    def decode(self, ids: Iterable[int]) -> str:
        # Keeping special tokens makes decode the exact inverse of encode.
        return self._hf.decode(list(ids), skip_special_tokens=False)

    def token_to_id(self, token: str) -> int | None:
        return self._hf.token_to_id(token)

    def id_to_token(self, idx: int) -> str | None:
        return self._hf.id_to_token(idx)


def _new_hf_tokenizer() -> _HFTokenizer:
    hf = _HFTokenizer(models.BPE())  # byte alphabet covers everything: no unk needed
    hf.normalizer = None  # any normalization would break exact round-trip
    hf.pre_tokenizer = _pre_tokenizer()
    hf.decoder = decoders.ByteLevel()
    return hf


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 8192, sources: list[str] | None = None
) -> Tokenizer:
    """Train byte-level BPE; the result has exactly `vocab_size` entries."""
    hf = _new_hf_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),  # listed first -> ids 0..5
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    hf.train_from_iterator(texts, trainer=trainer)
    got = hf.get_vocab_size(with_added_tokens=True)
    if got != vocab_size:
        raise ValueError(f"corpus too small: trained {got} entries, wanted {vocab_size}")
    metadata = {
        "version": FORMAT_VERSION,
        "vocab_size": vocab_size,
        "sources": list(sources or []),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "special_tokens": list(SPECIAL_TOKENS),
    }
    return Tokenizer(hf, metadata)
