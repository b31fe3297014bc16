"""From (query, tools) requests to calls: the prompt layout, batched cached greedy generation, parsing.

`Predictor` loads a checkpoint once and answers batches; the CLI's `run` and `predict` use it.
Requests that cannot be answered (tools too long for the encoder) get an error string, never a crash.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from needle.data.format import ToolsTooLong, decoder_prefix, encode_prompt, parse_answer
from needle.data.schema import Tool
from needle.infer.generate import generate, pad_batch
from needle.model.checkpoint import CheckpointError, load_model
from needle.tokenizer import Tokenizer

PRECISIONS = ("fp32", "bf16-encoder")  # bf16-encoder: encoder blocks in bf16, decoder and head in fp32
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "assets" / "model"


@dataclass
class Prediction:
    calls: list[dict]  # [] when no tool should be called, or when the output did not parse
    text: str = ""  # the raw generated answer
    parsed: bool = True
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


def default_checkpoint() -> Path:
    """$NEEDLE_CHECKPOINT when set (e.g. a `needle download`ed model), else the shipped model."""
    if os.environ.get("NEEDLE_CHECKPOINT"):
        return Path(os.environ["NEEDLE_CHECKPOINT"])
    if not DEFAULT_CHECKPOINT.is_dir():
        raise CheckpointError("no --checkpoint given and no shipped model in needle/assets/model; "
                              "train one (bash scripts/run_cpu.sh) and pass --checkpoint DIR")
    return DEFAULT_CHECKPOINT


class Predictor:
    def __init__(self, checkpoint: str | Path | None = None, device: str = "cpu", max_new_tokens: int = 256,
                 batch_size: int = 32, precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.model, self.path = load_model(checkpoint or default_checkpoint(), device)
        if precision == "bf16-encoder":
            self.model.encoder_in(torch.bfloat16)
        self.tok = Tokenizer.from_file(self.path / "tokenizer.json")
        self.device, self.max_new_tokens, self.batch_size = torch.device(device), max_new_tokens, batch_size

    def predict(self, requests: list[tuple[str, list[Tool]]]) -> list[Prediction]:
        results: list[Prediction | None] = [None] * len(requests)
        prompts = {}
        for i, (query, tools) in enumerate(requests):
            try:
                p = encode_prompt(self.tok, query, tools, self.model.cfg.max_encoder_len)
            except ToolsTooLong as e:
                results[i] = Prediction([], parsed=False, error=str(e))
                continue
            prompts[i] = p
            if p.query_truncated_from:
                results[i] = Prediction([], warnings=[f"query cut from {p.query_truncated_from} to {p.query_tokens} tokens"])
        order = sorted(prompts, key=lambda i: len(prompts[i].ids))  # similar lengths batch with little padding
        for s in range(0, len(order), self.batch_size):
            idx = order[s:s + self.batch_size]
            for i, pred in zip(idx, self._generate([prompts[i].ids for i in idx])):
                pred.warnings = (results[i].warnings if results[i] else []) + pred.warnings
                results[i] = pred
        return results

    def _generate(self, enc_seqs: list[list[int]]) -> list[Prediction]:
        enc_ids, enc_mask = pad_batch(enc_seqs, self.tok.pad_id)
        prefix = torch.tensor([decoder_prefix(self.tok)] * len(enc_seqs), dtype=torch.long)
        out = generate(self.model, enc_ids.to(self.device), enc_mask.to(self.device), prefix.to(self.device),
                       self.max_new_tokens, self.tok.eos_id, self.tok.pad_id)
        preds = []
        for row in out.tolist():
            ended = self.tok.eos_id in row
            text = self.tok.decode(row[:row.index(self.tok.eos_id)] if ended else row)
            calls = parse_answer(text)
            preds.append(Prediction(calls or [], text, parsed=calls is not None,
                                    warnings=[] if ended else ["answer hit the token limit before <eos>"]))
        return preds
