"""scripts/benchmark_table.py: one row per model from `needle eval --output` files, beside the published rows."""
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "benchmark_table.py"


def test_rows_join_suites_by_label(tmp_path):
    cats = {c: {"correct": 1, "total": 2, "accuracy": 0.5} for c in ("simple_python", "multiple", "parallel",
                                                                         "parallel_multiple")}
    common = {"model": "cmd", "label": "Model X", "date": "2026-11-26", "machine": "x86_64 2 cores"}
    (tmp_path / "b.json").write_text(json.dumps({**common, "suite": "bfcl", "command": "needle eval --suite bfcl",
        "results": {"categories": cats, "aggregates": {"non_live_ast": 0.5, "live_ast": 0.25, "irrelevance": 0.75}}}))
    (tmp_path / "h.json").write_text(json.dumps({**common, "suite": "heldout", "command": "needle eval --suite heldout",
        "results": {s: {"n": 200, "exact_match": 0.125} for s in ("unseen_tools", "unseen_phrasing", "unseen_domains")}}))
    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "b.json"), str(tmp_path / "h.json")],
                         capture_output=True, text=True, check=True).stdout
    row = next(line for line in out.splitlines() if line.startswith("| Model X |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:11] == ["50.0"] * 5 + ["25.0", "75.0", "12.5", "12.5", "12.5"]
    assert "200 per split" in cells[11] and "| FunctionGemma-270M | 61.6 |" in out
