"""The README's benchmark table from `needle eval --output` files, beside the published numbers.

    python scripts/benchmark_table.py docs/results/*.json

Each results file is one suite (bfcl or heldout) for one model; files with the same `label` (or, without
one, the same `model`) make one row. Published rows are BFCL leaderboard v4 / model-card figures as listed
in SPEC.md section 7 (AST accuracy %); their held-out cells are empty (those models never saw our splits).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

# model: (simple, multiple, parallel, parallel_multiple, live AST, irrelevance, source)
PUBLISHED = {
    "Qwen3-0.6B": (86.5, 86.0, 67.5, 69.5, 56.6, 80.8, "BFCL leaderboard v4"),
    "Granite-4.0-350M": (83.0, 84.5, 70.0, 55.5, 46.1, 60.8, "BFCL leaderboard v4"),
    "FunctionGemma-270M": (61.6, 63.5, 39.0, 29.5, 26.0, 73.7, "its model card (live AST ~26)"),
}
NON_LIVE = ("simple_python", "multiple", "parallel", "parallel_multiple")


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _provenance(rec: dict) -> str:
    extra = ""
    if rec["suite"] == "heldout":
        extra = f", {next(iter(rec['results'].values()))['n']} per split"
    return f"`{rec['command']}` ({rec['date']}, {rec['machine']}{extra})"


def rows(files: list[Path]) -> list[list[str]]:
    by_model: dict[str, dict] = {}
    for f in files:
        rec = json.loads(f.read_text())
        label = rec.get("label") or rec["model"]
        by_model.setdefault(label, {})[rec["suite"]] = rec
    out = []
    for name, (s, m, p, pm, live, irr, src) in PUBLISHED.items():
        out.append([name, f"{s:.1f}", f"{m:.1f}", f"{p:.1f}", f"{pm:.1f}", f"{(s + m + p + pm) / 4:.1f}", f"{live:.1f}",
                    f"{irr:.1f}", "-", "-", "-", f"published: {src}"])
    for label, suites in by_model.items():
        b, h = suites.get("bfcl"), suites.get("heldout")
        cats = b["results"]["categories"] if b else {}
        agg = b["results"]["aggregates"] if b else {}
        heldout = h["results"] if h else {}
        how = "; ".join(_provenance(r) for r in suites.values())
        out.append([label, *(_pct(cats[c]["accuracy"]) if c in cats else "-" for c in NON_LIVE),
                    _pct(agg.get("non_live_ast")), _pct(agg.get("live_ast")), _pct(agg.get("irrelevance")),
                    *(_pct(heldout[s]["exact_match"]) if s in heldout else "-"
                      for s in ("unseen_tools", "unseen_phrasing", "unseen_domains")),
                    f"measured here: {how}"])
    return out


def main() -> None:
    files = [Path(a) for a in sys.argv[1:]]
    head = ["model", "simple", "multiple", "parallel", "parallel-multiple", "non-live AST", "live AST", "irrelevance",
            "held-out unseen tools", "unseen phrasing", "unseen domains", "source"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows(files):
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
