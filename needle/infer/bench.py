"""`needle bench`: inference speed on this machine, for one typical query, against the naive decoder.

The typical query (needle/assets/bench_query.json: ~230 encoder tokens, 3 tools, a 31-token answer) runs
at batch 1 through the fast engine under its grammar. The answer's tokens are taken in place of the
argmax after the same work (`generate_fast(teacher=...)`), so random weights cost what a model that
answers correctly would. The naive decoder (no caches, fp32: encoder and decoder re-run per token) is
timed in the same run as the baseline. Medians over repeats; timings on shared machines are noisy.
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import time
from pathlib import Path

import torch

from needle.data.format import decoder_prefix, encode_answer, encode_prompt, parse_answer
from needle.data.schema import parse_calls, parse_tools
from needle.infer.constrained import Grammars
from needle.infer.engine import Engine
from needle.infer.generate import DecodeStats, generate_fast, generate_naive, pad_batch
from needle.infer.predict import ABSTAIN_BELOW, COPY_BONUS, CUE_BONUS, RELEVANT_ABOVE, TOOL_PRIOR

QUERY_FILE = Path(__file__).resolve().parent.parent / "assets" / "bench_query.json"


def _times(fn, repeats: int) -> list[float]:
    fn()  # warm-up: first calls allocate and pick kernels
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


class TypicalQuery:
    def __init__(self, tok, max_encoder_len: int, path: Path = QUERY_FILE):
        d = json.loads(path.read_text())
        self.tok, self.query, self.tools = tok, d["query"], parse_tools(d["tools"], where=str(path))
        calls = parse_calls(d["answer"], where=str(path))
        self.answer = [c.to_dict() for c in calls]
        self.enc = encode_prompt(tok, self.query, self.tools, max_encoder_len).ids
        self.answer_ids = encode_answer(tok, calls)[0] + [tok.eos_id]
        self.prefix = torch.tensor([decoder_prefix(tok)])

    def inputs(self, batch: int = 1):
        ids, mask = pad_batch([self.enc] * batch, self.tok.pad_id)
        return ids, mask, self.prefix.expand(batch, -1)


def _answer(engine, grammars, q: TypicalQuery, grammar: bool, stats: DecodeStats, batch: int = 1) -> list[dict]:
    """Everything a query costs: prompt, grammar, generation, parsing (batch copies of the query)."""
    enc = encode_prompt(q.tok, q.query, q.tools, engine.cfg.max_encoder_len).ids
    ids, mask = pad_batch([enc] * batch, q.tok.pad_id)
    gs = [grammars.for_tools(q.tools, q.query) for _ in range(batch)] if grammar else None
    rows = generate_fast(engine, ids, mask, q.prefix.expand(batch, -1), len(q.answer_ids) + 8, q.tok.eos_id,
                         q.tok.pad_id, gs, stats, teacher=[q.answer_ids] * batch, copy_bonus=COPY_BONUS,
                         cue_bonus=CUE_BONUS, tool_prior=TOOL_PRIOR, relevant_above=RELEVANT_ABOVE,
                         abstain_below=ABSTAIN_BELOW)  # its check costs a full-vocabulary step per name
    return parse_answer(q.tok.decode(rows[0][:-1]))


def _step_time(engine: Engine, q: TypicalQuery, repeats: int) -> float:
    """Median seconds of one decoder step (hidden state + full-vocabulary logits) at batch 1."""
    ids, mask, prefix = q.inputs()
    sess = engine.encode(ids, mask, max_len=prefix.shape[1] + 32)
    engine.hidden(sess, prefix)
    token = torch.tensor([[q.answer_ids[0]]])

    def thirty_steps():
        sess.pos = prefix.shape[1]
        for _ in range(30):
            engine.logits(engine.hidden(sess, token))
    return statistics.median(_times(thirty_steps, max(3, repeats // 4))) / 30


def measure(model, tok, threads: int, repeats: int, weights: str) -> dict:
    torch.set_num_threads(threads)
    engine, grammars, q = Engine(model, weights), Grammars(tok), TypicalQuery(tok, model.cfg.max_encoder_len)
    ids, mask, prefix = q.inputs()
    prefill = statistics.median(_times(lambda: engine.encode(ids, mask), repeats))
    step = _step_time(engine, q, repeats)
    stats = DecodeStats()
    calls = _answer(engine, grammars, q, True, stats)
    if calls != q.answer or stats.failures:
        raise RuntimeError(f"the benchmark query did not replay its answer: {calls} {stats.failures}")
    e2e = _times(lambda: _answer(engine, grammars, q, True, DecodeStats()), repeats)
    e2e_free = _times(lambda: _answer(engine, grammars, q, False, DecodeStats()), repeats)
    n_out = len(q.answer_ids)
    naive = _times(lambda: generate_naive(model, ids, mask, prefix, n_out, tok.eos_id, tok.pad_id), 2)
    batch = statistics.median(_times(lambda: _answer(engine, grammars, q, True, DecodeStats(), 32), 2))
    p50 = _pct(e2e, 0.5)
    per_token = engine.weight_bytes()["decoder_per_token"]
    return {
        "threads": threads, "weights": weights, "encoder_tokens": len(q.enc), "output_tokens": n_out,
        "prefill_tokens_per_s": len(q.enc) / prefill, "prefill_ms": prefill * 1e3,
        "decode_step_ms": step * 1e3, "decode_tokens_per_s": 1 / step,
        "decoder_calls": stats.decoder_calls, "forced_tokens": stats.forced, "sampled_tokens": stats.sampled,
        "effective_output_tokens_per_s": n_out / max(p50 - prefill, 1e-9),
        "e2e_ms_p50": p50 * 1e3, "e2e_ms_p90": _pct(e2e, 0.9) * 1e3,
        "e2e_no_grammar_ms_p50": _pct(e2e_free, 0.5) * 1e3,
        "naive_ms": statistics.median(naive) * 1e3, "speedup_vs_naive": statistics.median(naive) / p50,
        "batch32_queries_per_s": 32 / batch,
        "decoder_weight_bytes_per_token": per_token,
        "decoder_bytes_per_s_at_step": per_token / step,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


ROWS = [("prefill tokens/s", "prefill_tokens_per_s", "{:,.0f}"),
        ("decode tokens/s per step", "decode_tokens_per_s", "{:,.0f}"),
        ("effective output tokens/s", "effective_output_tokens_per_s", "{:,.0f}"),
        ("decoder calls / forced tokens", None, None),
        ("end-to-end ms p50", "e2e_ms_p50", "{:.1f}"), ("end-to-end ms p90", "e2e_ms_p90", "{:.1f}"),
        ("end-to-end ms p50, no grammar", "e2e_no_grammar_ms_p50", "{:.1f}"),
        ("naive decoder ms (baseline)", "naive_ms", "{:,.0f}"), ("speed-up vs naive", "speedup_vs_naive", "{:.0f}x"),
        ("batch 32 queries/s", "batch32_queries_per_s", "{:.1f}"),
        ("decoder weights per token MB", "decoder_weight_bytes_per_token", None),
        ("peak RSS MiB", "peak_rss_mib", "{:.0f}")]


def table(results: list[dict]) -> str:
    head = ["metric"] + [f"{r['threads']} thread{'s' * (r['threads'] > 1)}" for r in results]
    lines = [head]
    for label, key, fmt in ROWS:
        if key is None:
            cells = [f"{r['decoder_calls']} / {r['forced_tokens']} of {r['output_tokens']}" for r in results]
        elif fmt is None:
            cells = [f"{r[key] / 1e6:.1f}" for r in results]
        else:
            cells = [fmt.format(r[key]) for r in results]
        lines.append([label] + cells)
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
                     for row in lines)


def run(checkpoint: str, preset: str, threads: list[int], repeats: int, weights: str) -> dict:
    """Measure a checkpoint (default: the shipped one, else random weights of `preset` or of 26m)."""
    from needle.infer.predict import DEFAULT_CHECKPOINT, default_checkpoint, random_checkpoint
    from needle.model.checkpoint import load_model
    from needle.tokenizer import Tokenizer
    shipped = DEFAULT_CHECKPOINT.is_dir() or os.environ.get("NEEDLE_CHECKPOINT")
    if not preset and not checkpoint and not shipped:
        preset = "26m"  # nothing shipped yet: random weights cost the same
    if preset:
        checkpoint = random_checkpoint(preset)
    model, path = load_model(checkpoint or default_checkpoint(), "cpu")
    tok = Tokenizer.from_file(path / "tokenizer.json")
    return {"model": f"random {preset}" if preset else str(path),
            "results": [measure(model, tok, n, repeats, weights) for n in threads]}
