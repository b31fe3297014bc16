"""From (query, tools) requests to calls: the prompt layout, batched fast generation, parsing, validation.

`Predictor` loads a checkpoint once and answers batches; the CLI's `run`, `predict` and `eval` use it.
On CPU it decodes with the fast engine (int8 weights by default) under the tools' grammar, so every
answer parses and follows the offered schemas, tool names lean toward the tools the request's words point to
(needle/infer/toolprior.py), and values toward spans of the request (the copy bias, needle/infer/copying.py);
`grammar=False` turns the grammar off for comparison.
On CUDA the model's own cached decoder runs, unconstrained. Tools too long for the encoder are shortlisted
to the most relevant that fit (needle/infer/shortlist.py, with a warning); requests that still cannot be
answered (one tool too long by itself) get an error string, never a crash.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from needle.data.format import ToolsTooLong, complete_calls, decoder_prefix, encode_prompt, parse_answer
from needle.data.schema import Tool, call_problems
from needle.infer.arrays import repair_arrays
from needle.infer.clauses import add_clause_calls, open_clauses
from needle.infer.constrained import Grammars
from needle.infer.copying import fix_meridiem, ground_calls
from needle.infer.cues import fill_cued_numbers, fill_named_enums, swap_cued
from needle.infer.distinct import distinct_values
from needle.infer.engine import Engine
from needle.infer.generate import DecodeStats, generate, generate_fast, pad_batch
from needle.infer.listed import expand_listed
from needle.infer.named import (drop_unnamed_args, drop_unnamed_calls, fill_named_strings, fill_named_switches,
                                swap_phrased_enums, swap_unnamed_enums)
from needle.infer.quantize import WEIGHT_KINDS
from needle.infer.repair import MIN_LOGPROB, Encoded, repair_calls
from needle.infer.shortlist import shortlist
from needle.infer.toolprior import drop_nothing_new, drop_unrelated, first_tool_retry
from needle.model.checkpoint import CheckpointError, load_model
from needle.tokenizer import Tokenizer

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "assets" / "model"
# Under the grammar, a model that wants a tool that is not offered would be forced into a wrong call; when
# it puts less than this share of its probability on the offered names, the answer ends there instead. 0.5 until
# phase 12's weights; 0.7 chosen for them on the 1,500-request validation sample (seed 13), 0.9 once the rules
# after decoding were in place, there and on a second sample (seed 15; model card, "The abstention threshold for
# phase 12's weights" and "The abstention threshold once the rules were in place").
ABSTAIN_BELOW = 0.9
# Logit bonus for tokens that keep an argument value a span of the request (needle/infer/copying.py); chosen
# on a generated validation sample (`needle generate-data --heldout 150 --seed 11`): 2, 4 and 8 were alike.
COPY_BONUS = 4.0
# Logit bonus, over every allowed token, for copying a number the request names the argument beside ("a base
# of 10": base; needle/infer/cues.py).
CUE_BONUS = 8.0
# Where a tool name comes next, the weight of each offered tool's BM25 relevance to the request, added to the
# model's logit for its name; and the relevance from which a request is answered with a call even where the
# abstention rule would end it (needle/infer/toolprior.py). Both chosen on the validation sample above (weight 1
# and 2, threshold 15, 20 and 30 alike).
TOOL_PRIOR = 2.0
RELEVANT_ABOVE = 20.0
# Calls to a tool whose relevance to the request is at most this, and that copy none of their values from it, are
# not made (needle/infer/toolprior.py, drop_unrelated). Chosen on the 1,500-request validation sample (`needle
# generate-data --heldout 500 --seed 13`); model card, "the relevance floor".
RELEVANCE_FLOOR = 4.0


@dataclass
class Prediction:
    calls: list[dict]  # [] when no tool should be called, or when the output did not parse
    text: str = ""  # the raw generated answer
    parsed: bool = True
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    valid: bool = True  # every call names an offered tool and its arguments validate against the schema


def default_checkpoint() -> Path:
    """$NEEDLE_CHECKPOINT when set (e.g. a `needle download`ed model), else the shipped model."""
    if os.environ.get("NEEDLE_CHECKPOINT"):
        return Path(os.environ["NEEDLE_CHECKPOINT"])
    if not DEFAULT_CHECKPOINT.is_dir():
        raise CheckpointError("no --checkpoint given and no shipped model in needle/assets/model; "
                              "train one (bash scripts/run_cpu.sh) and pass --checkpoint DIR")
    return DEFAULT_CHECKPOINT


def random_checkpoint(preset: str) -> str:
    """A checkpoint of `preset` with random weights (seed 0) in a temporary directory: the floor a trained
    model must beat, and as fast as a trained one (speed does not depend on the weights)."""
    import tempfile

    from needle.model import Needle, NeedleConfig
    from needle.model.checkpoint import save_checkpoint
    from needle.tokenizer import default_tokenizer_path
    torch.manual_seed(0)
    path = Path(tempfile.mkdtemp(prefix="needle-random-")) / preset
    save_checkpoint(path, Needle(NeedleConfig.from_name(preset)), default_tokenizer_path(), {"note": "random weights"})
    return str(path)


class Predictor:
    def __init__(self, checkpoint: str | Path | None = None, device: str = "cpu", max_new_tokens: int = 256,
                 batch_size: int = 32, weights: str = "int8", grammar: bool = True,
                 abstain_below: float = ABSTAIN_BELOW, copy_bonus: float = COPY_BONUS, drop_ungrounded: bool = True,
                 cue_bonus: float = CUE_BONUS, fill_enums: bool = True, expand_lists: bool = True,
                 tool_prior: float = TOOL_PRIOR,
                 relevant_above: float = RELEVANT_ABOVE, shortlist_tools: bool = True,
                 span_repair: float | None = MIN_LOGPROB, relevance_floor: float | None = RELEVANCE_FLOOR,
                 repair_lists: bool = True, distinct: bool = True, retry_first: bool = True,
                 drop_unnamed: bool = True, clause_calls: bool = True):
        if weights not in WEIGHT_KINDS:
            raise ValueError(f"weights must be one of {', '.join(WEIGHT_KINDS)}, got {weights!r}")
        self.model, self.path = load_model(checkpoint or default_checkpoint(), device)
        self.tok = Tokenizer.from_file(self.path / "tokenizer.json")
        self.device, self.max_new_tokens, self.batch_size = torch.device(device), max_new_tokens, batch_size
        on_cpu = self.device.type == "cpu"
        self.engine = Engine(self.model, weights) if on_cpu else None
        self.grammars = Grammars(self.tok) if grammar and on_cpu else None
        self.stats = DecodeStats()  # accumulated over every predict() call
        self.abstain_below, self.copy_bonus, self.drop_ungrounded = abstain_below, copy_bonus, drop_ungrounded
        self.cue_bonus, self.fill_enums, self.tool_prior = cue_bonus, fill_enums, tool_prior
        self.expand_lists = expand_lists  # one call per value the request lists (needle/infer/listed.py)
        self.relevant_above, self.relevance_floor = relevant_above, relevance_floor  # floor None: keep every call
        self.span_repair = span_repair if drop_ungrounded else None  # None: no span repair (needle/infer/repair.py)
        self.repair_lists = repair_lists and drop_ungrounded  # array values (needle/infer/arrays.py)
        self.distinct = distinct and drop_ungrounded  # one span, one argument (needle/infer/distinct.py)
        self.shortlist_tools = shortlist_tools  # tools too long for the encoder: the most relevant that fit
        # a first call whose part of the request points to a tool the answer lacks: decoded again with that tool
        self.retry_first = retry_first and drop_ungrounded and grammar and tool_prior > 0 and on_cpu
        self.drop_unnamed = drop_unnamed and drop_ungrounded  # optional values the request does not name (named.py)
        # the clauses an answer leaves out answered alone, their calls to tools it lacks added (clauses.py)
        self.clause_calls = clause_calls and drop_ungrounded and relevance_floor is not None

    def predict(self, requests: list[tuple[str, list[Tool]]]) -> list[Prediction]:
        results, requests = self._answer(requests)
        if self.clause_calls:
            self._add_clause_calls(requests, results)
        return results

    def _answer(self, requests: list[tuple[str, list[Tool]]]) -> tuple[list[Prediction], list]:
        """Each request's prediction, and the requests with the tools each was answered with."""
        results: list[Prediction | None] = [None] * len(requests)
        requests, prompts = list(requests), {}
        for i, (query, tools) in enumerate(requests):
            try:
                prompts[i], kept, warnings = self._prompt(query, tools)
            except ToolsTooLong as e:
                results[i] = Prediction([], parsed=False, error=str(e), valid=False)
                continue
            requests[i] = (query, kept)
            if warnings:
                results[i] = Prediction([], warnings=warnings)
        order = sorted(prompts, key=lambda i: len(prompts[i].ids))  # similar lengths batch with little padding
        for s in range(0, len(order), self.batch_size):
            idx = order[s:s + self.batch_size]
            preds = self._generate([prompts[i].ids for i in idx], [requests[i] for i in idx])
            for i, pred in zip(idx, preds):
                pred.warnings = (results[i].warnings if results[i] else []) + pred.warnings
                results[i] = pred
        return results, requests

    def _add_clause_calls(self, requests: list[tuple[str, list[Tool]]], results: list[Prediction]) -> None:
        """Answers the open clauses of every answer with calls alone, and adds their calls to tools it lacks."""
        jobs, owners = [], []
        for i, ((query, tools), pred) in enumerate(zip(requests, results)):
            if pred.calls:
                for a, b in open_clauses(query, pred.calls, tools, self.relevance_floor):
                    jobs.append((query[a:b], tools))
                    owners.append((i, a, b))
        if not jobs:
            return
        found: dict[int, list] = {}
        for (i, a, b), pred in zip(owners, self._answer(jobs)[0]):
            if pred.calls:
                found.setdefault(i, []).append((a, b, pred.calls))
        for i, answers in found.items():
            (query, tools), pred = requests[i], results[i]
            calls, added = add_clause_calls(pred.calls, answers, tools, query, self.relevance_floor)
            if added:
                problems = call_problems(calls, tools)
                pred.calls, pred.valid = calls, not problems
                pred.warnings += added + [p for p in problems if p not in pred.warnings]

    def _prompt(self, query: str, tools: list[Tool]):
        """The encoder prompt, the tools it offers, and warnings; tools that do not fit are shortlisted to the
        most relevant that do. Raises ToolsTooLong when not even that is possible."""
        limit, warnings = self.model.cfg.max_encoder_len, []
        try:
            p = encode_prompt(self.tok, query, tools, limit)
        except ToolsTooLong:
            kept = shortlist(self.tok, query, tools, limit) if self.shortlist_tools and len(tools) > 1 else []
            if not kept:
                raise
            warnings.append(f"the {len(tools)} offered tools do not fit in the encoder; answered with the "
                            f"{len(kept)} most relevant to the request: {', '.join(t.name for t in kept)}")
            p, tools = encode_prompt(self.tok, query, kept, limit), kept
        if p.query_truncated_from:
            warnings.append(f"query cut from {p.query_truncated_from} to {p.query_tokens} tokens")
        return p, tools, warnings

    def _generate(self, enc_seqs: list[list[int]], requests: list[tuple[str, list[Tool]]]) -> list[Prediction]:
        rows, grammars, encoded = self._decode(enc_seqs, requests)
        preds = [self._read(row, query, t, g, enc)
                 for row, (query, t), g, enc in zip(rows, requests, grammars, encoded)]
        if not self.retry_first:
            return preds
        retry = {j: first for j, (pred, (query, t), g) in enumerate(zip(preds, requests, grammars))
                 if g is not None and g.names is not None
                 and (first := first_tool_retry(pred.calls, t, query)) is not None}
        if not retry:
            return preds
        idx = list(retry)
        again = self._decode([enc_seqs[j] for j in idx], [requests[j] for j in idx], [retry[j] for j in idx])
        for j, row, g, enc in zip(idx, *again):
            query, tools = requests[j]
            pred = self._read(row, query, tools, g, enc)
            pred.warnings.insert(0, f"decoded again with {tools[retry[j]].name} as the first tool: the part of the "
                                    f"request the first call used points to it, not to {preds[j].calls[0]['name']}")
            preds[j] = pred
        return preds

    def _decode(self, enc_seqs: list[list[int]], requests: list[tuple[str, list[Tool]]],
                firsts: list[int] | None = None):
        """Each request's answer tokens, grammar (None without one) and encoding; `firsts`: per request, the
        index of the tool its first call must name (a retry)."""
        enc_ids, enc_mask = pad_batch(enc_seqs, self.tok.pad_id)
        prefix = torch.tensor([decoder_prefix(self.tok)] * len(enc_seqs), dtype=torch.long)
        grammars = [self._grammar(query, t) for query, t in requests] if self.grammars else None
        for g, first in zip(grammars or [], firsts or []):
            if g is not None and g.names is not None:
                g.names.first = first
        memory = []  # the fast engine's encoder output: the rules after decoding score from it
        if self.engine is not None:
            rows = generate_fast(self.engine, enc_ids, enc_mask, prefix, self.max_new_tokens, self.tok.eos_id,
                                 self.tok.pad_id, grammars, self.stats, abstain_below=self.abstain_below,
                                 copy_bonus=self.copy_bonus, cue_bonus=self.cue_bonus, tool_prior=self.tool_prior,
                                 relevant_above=self.relevant_above, encoded=memory)
        else:
            rows = generate(self.model, enc_ids.to(self.device), enc_mask.to(self.device), prefix.to(self.device),
                            self.max_new_tokens, self.tok.eos_id, self.tok.pad_id).tolist()
        encoded = [Encoded(self.model, enc, memory[0][j, :len(enc)] if memory else None)
                   for j, enc in enumerate(enc_seqs)]
        return rows, grammars or [None] * len(rows), encoded

    def _grammar(self, query: str, tools: list[Tool]):
        try:
            return self.grammars.for_tools(tools, query)
        except ValueError as e:  # the grammar engine's own limits: answer unconstrained, and say so
            self.stats.failures.append(str(e))
            return None

    def _read(self, row: list[int], query: str, tools: list[Tool], grammar, enc: Encoded) -> Prediction:
        ended = self.tok.eos_id in row
        text = self.tok.decode(row[:row.index(self.tok.eos_id)] if ended else row)
        calls, warnings = parse_answer(text), list(grammar.warnings) if grammar else []
        if self.grammars is not None and grammar is None:
            warnings.append("the tools' grammar did not compile; answered without it")
        if not ended:
            warnings.append("answer hit the token limit before <eos>")
            if calls is None and grammar is not None:  # grammar-made text: its finished calls are valid
                calls = complete_calls(text)
                warnings.append(f"kept the {len(calls)} complete call(s) before the cut")
        if calls is None:
            return Prediction([], text, parsed=False, warnings=warnings, valid=False)
        if self.span_repair is not None:
            calls, repaired = repair_calls(self.model, self.tok, enc, calls, tools, query, self.span_repair)
            warnings += repaired
        if self.distinct:
            calls, changed = distinct_values(self.model, self.tok, enc, calls, tools, query)
            warnings += changed
            calls, changed = swap_cued(calls, tools, query)
            warnings += changed
        if self.repair_lists:
            calls, repaired = repair_arrays(self.model, self.tok, enc, calls, tools, query)
            warnings += repaired
        if self.drop_ungrounded:
            calls, fixed = fix_meridiem(calls, tools, query)
            warnings += fixed
            calls, dropped = ground_calls(calls, tools, query)
            warnings += dropped
        if self.relevance_floor is not None and self.grammars is not None:
            names = grammar.names if grammar is not None else None  # the tool prior's relevance, computed once
            calls, dropped = drop_unrelated(calls, tools, query, self.relevance_floor,
                                            names.relevance if names is not None else None)
            warnings += dropped
        if self.drop_ungrounded:
            calls, dropped = drop_nothing_new(calls, query)
            warnings += dropped
        if self.drop_unnamed:
            calls, dropped = drop_unnamed_args(calls, tools, query)
            warnings += dropped
            calls, changed = swap_unnamed_enums(calls, tools, query)
            warnings += changed
            calls, dropped = drop_unnamed_calls(calls, tools, query)
            warnings += dropped
            calls, changed = swap_phrased_enums(calls, tools, query)
            warnings += changed
        if self.fill_enums:
            calls, added = fill_named_enums(calls, tools, query)
            warnings += added
            calls, added = fill_cued_numbers(calls, tools, query)
            warnings += added
            calls, added = fill_named_switches(calls, tools, query)
            warnings += added
            calls, added = fill_named_strings(self.model, self.tok, enc, calls, tools, query)
            warnings += added
        if self.expand_lists:
            calls, added = expand_listed(calls, tools, query)
            warnings += added
        problems = call_problems(calls, tools)
        return Prediction(calls, text, warnings=warnings + problems, valid=not problems)
