"""`needle eval` as a user runs it: a checkpoint in process, and the same model as an external predictor."""
import json
import subprocess
import sys

from needle.data.build import write_heldout


def _needle(*args):
    return subprocess.run([sys.executable, "-m", "needle.cli", *args], capture_output=True, text=True, timeout=600)


def test_heldout_suite_checkpoint_and_predictor_agree(tiny_checkpoint, tmp_path):
    data = tmp_path / "heldout"
    write_heldout(data, 12, workers=1, progress_bar=False)
    common = ["eval", "--suite", "heldout", "--data", str(data)]
    r1 = _needle(*common, "--checkpoint", tiny_checkpoint, "--output", str(tmp_path / "a.json"))
    assert r1.returncode == 0, r1.stderr
    assert "unseen_tools" in r1.stdout and "Exact match by call type" in r1.stdout
    predictor = f"{sys.executable} -m needle.cli predict --checkpoint {tiny_checkpoint}"
    r2 = _needle(*common, "--predictor", predictor, "--output", str(tmp_path / "b.json"), "--markdown")
    assert r2.returncode == 0, r2.stderr
    assert "| split |" in r2.stdout
    a, b = (json.loads((tmp_path / f).read_text())["results"] for f in ("a.json", "b.json"))
    for split in a:  # same model, same inputs: the same scores either way
        assert a[split]["n"] == b[split]["n"] == 12
        assert a[split]["abstain_accuracy"] == b[split]["abstain_accuracy"]
        assert a[split]["exact_match"] == b[split]["exact_match"]


def test_a_predictor_that_dies_or_babbles_is_reported(tmp_path):
    data = tmp_path / "heldout"
    write_heldout(data, 5, workers=1, progress_bar=False)
    babble = f"{sys.executable} -c \"import sys\nfor l in sys.stdin: print('not json', flush=True)\""
    r = _needle("eval", "--suite", "heldout", "--data", str(data), "--predictor", babble, "--output",
                str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "r.json").read_text())["results"]
    assert all(s["parse_rate"] == 0 and s["call_accuracy"] == 0 for s in res.values())
    dead = f"{sys.executable} -c \"import sys; sys.exit(3)\""
    r = _needle("eval", "--suite", "heldout", "--data", str(data), "--predictor", dead)
    assert r.returncode == 2 and "stopped after 0 of 5 answers" in r.stderr and "Traceback" not in r.stderr
    r = _needle("eval", "--suite", "nope", "--preset", "tiny")
    assert r.returncode == 2 and "unknown suite" in r.stderr


def test_bfcl_suite_prints_categories_and_aggregates(tiny_checkpoint, tmp_path):
    """The BFCL suite through the CLI, as a user runs it (a few items per category)."""
    import pytest
    pytest.importorskip("bfcl_eval")
    r = _needle("eval", "--suite", "bfcl", "--checkpoint", tiny_checkpoint, "--limit", "2", "--max-new-tokens", "24",
                "--output", str(tmp_path / "b.json"), "--markdown")
    assert r.returncode == 0, r.stderr
    assert "| live_relevance |" in r.stdout and "| non live ast |" in r.stdout and "| overall |" in r.stdout
    res = json.loads((tmp_path / "b.json").read_text())["results"]
    assert len(res["categories"]) == 11 and res["aggregates"]["overall"] is not None
