"""`needle data stats FILE`: what a tool-call dataset holds, as plain-text tables.

Counts by call type, tools offered and calls per example, token lengths (on a sample, with the real
prompt layout), most frequent tools, the exact-duplicate rate and the share of queries still unique
once argument values are masked (a measure of phrasing variety that values alone cannot inflate), and how
varied the string values are (a few values filling most slots teach a model to recall them, not to copy).
"""
from __future__ import annotations

import re
import statistics
from collections import Counter
from pathlib import Path

from needle.data.format import encode_answer, encode_prompt
from needle.data.schema import Example, read_jsonl_meta

_DIGITS = re.compile(r"\d+")


def _leaf_values(ex: Example) -> list:
    """Every scalar argument value of the example's answer, nested ones included."""
    stack, out = [c.arguments for c in ex.answers], []
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack += list(v.values())
        elif isinstance(v, list):
            stack += v
        else:
            out.append(v)
    return out


def masked_query(ex: Example) -> str:
    """The query with every argument value (and any digit run) replaced by a placeholder."""
    q = ex.query.lower()
    values = [str(v).lower() for v in _leaf_values(ex) if not isinstance(v, bool) and str(v).strip()]
    for v in sorted(values, key=len, reverse=True):
        q = q.replace(v, "<v>")
    return _DIGITS.sub("#", q)


def string_values(ex: Example) -> list[str]:
    """Every string argument value of the example's answer, nested ones included."""
    return [v for v in _leaf_values(ex) if isinstance(v, str)]


def _call_type(ex: Example, meta: dict | None) -> str:
    if isinstance(meta, dict) and meta.get("type"):
        return str(meta["type"])
    if not ex.answers:
        return "no call (no tools)" if not ex.tools else "no call"
    return "single" if len(ex.answers) == 1 else "parallel"


def collect(path: str | Path, tok=None, token_sample: int = 2000) -> dict:
    """All statistics of one file; with a tokenizer, token lengths of the first `token_sample` examples."""
    path, skipped = Path(path), []
    types, tools_n, calls_n, called, offered = Counter(), Counter(), Counter(), Counter(), set()
    queries, masked, lengths, values = Counter(), set(), [], Counter()
    for ex, meta in read_jsonl_meta(path, errors="skip", skipped=skipped):
        types[_call_type(ex, meta)] += 1
        tools_n[len(ex.tools)] += 1
        calls_n[min(len(ex.answers), 3)] += 1
        called.update(c.name for c in ex.answers)
        offered.update(t.name for t in ex.tools)
        queries[ex.query] += 1
        masked.add(masked_query(ex))
        values.update(string_values(ex))
        if tok is not None and len(lengths) < token_sample:
            lengths.append(_lengths(tok, ex))
    n = sum(types.values())
    return {"file": str(path), "examples": n, "invalid": len(skipped), "invalid_examples": [str(e) for e in skipped[:5]],
            "types": types, "tools_offered": tools_n, "calls": calls_n, "top_tools": called.most_common(15),
            "distinct_tools_offered": len(offered), "distinct_tools_called": len(called),
            "duplicate_rate": (n - len(queries)) / n if n else 0.0,
            "unique_masked_share": len(masked) / n if n else 0.0, "lengths": lengths,
            "string_values": values.total(), "distinct_string_values": len(values),
            "top100_value_share": sum(c for _, c in values.most_common(100)) / max(1, values.total()),
            "top_values": values.most_common(10)}


def _lengths(tok, ex: Example) -> tuple[int, int]:
    """Encoder and decoder token counts with the real prompt layout (no length limit applied)."""
    enc = encode_prompt(tok, ex.query, ex.tools, max_len=1 << 30).ids
    return len(enc), len(encode_answer(tok, ex.answers)[0]) + 2  # + <tool_call> and <eos>


def _table(title: str, rows: list[tuple], total: int | None = None) -> str:
    width = max([len(str(r[0])) for r in rows] + [len(title)])
    out = [title]
    for key, count in rows:
        share = f"{100 * count / total:5.1f}%  {'#' * round(40 * count / total)}" if total else ""
        out.append(f"  {str(key):<{width}}  {count:>9}  {share}")
    return "\n".join(out)


def format_report(s: dict) -> str:
    n = s["examples"]
    parts = [f"{s['file']}: {n} valid examples, {s['invalid']} invalid",
             _table("call type", sorted(s["types"].items(), key=lambda kv: -kv[1]), n),
             _table("tools offered", sorted(s["tools_offered"].items()), n),
             _table("calls per example (3 = 3+)", sorted(s["calls"].items()), n),
             _table("most frequent tools called", s["top_tools"]),
             f"distinct tools: {s['distinct_tools_offered']} offered, {s['distinct_tools_called']} called",
             f"duplicate queries: {100 * s['duplicate_rate']:.2f}%",
             f"unique after masking argument values: {100 * s['unique_masked_share']:.1f}%",
             f"string argument values: {s['string_values']}, {s['distinct_string_values']} distinct; the 100 commonest "
             f"fill {100 * s['top100_value_share']:.1f}% of slots; commonest: "
             + ", ".join(f"{v!r} ({c})" for v, c in s["top_values"])]
    if s["lengths"]:
        enc, dec = zip(*s["lengths"])
        q = lambda xs, p: sorted(xs)[min(len(xs) - 1, int(p * len(xs)))]  # noqa: E731
        over = sum(e > 512 for e in enc) / len(enc)
        parts.append(f"tokens (sample of {len(enc)}): encoder median {statistics.median(enc):.0f}, p90 {q(enc, .9)}, "
                     f"max {max(enc)}, {100 * over:.1f}% over 512; decoder median {statistics.median(dec):.0f}, "
                     f"p90 {q(dec, .9)}, max {max(dec)}")
    for bad in s["invalid_examples"]:
        parts.append(f"invalid: {bad}")
    return "\n\n".join(parts)
