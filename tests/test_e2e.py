"""The whole path learns: scripts/run_cpu.py end to end (about 8 minutes on 2 cores).

The script's own target is 90% (measured on the development machine: see the closing notes / README).
Here the bar is 80%: floating-point kernels differ between CPUs, and the run must prove learning, not
reproduce one machine's last percent.
"""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_end_to_end_cpu_pipeline_reaches_target(tmp_path):
    cmd = [sys.executable, str(ROOT / "scripts/run_cpu.py"), "--out", str(tmp_path / "e2e"), "--target", "0.8"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    summary = [line for line in res.stdout.splitlines() if "exact match" in line]
    assert summary, res.stdout[-2000:] + res.stderr[-2000:]
    assert res.returncode == 0 and "PASS" in summary[-1], summary[-1]
