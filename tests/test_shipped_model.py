"""The shipped model (needle/assets/model) is every command's default and answers plain requests correctly."""
import json
import subprocess
from pathlib import Path

import pytest

from needle.data.schema import parse_tools
from needle.infer.engine import Session
from needle.infer.predict import DEFAULT_CHECKPOINT, Predictor
from needle.model.checkpoint import load_model

TOOLS = json.loads((Path(__file__).resolve().parent.parent / "examples" / "home_tools.json").read_text())
pytestmark = pytest.mark.skipif(not DEFAULT_CHECKPOINT.is_dir(), reason="no shipped model")


@pytest.fixture(scope="module")
def predictor():
    return Predictor()


def test_shipped_weights_are_compact_and_the_26m_preset():
    size = sum(f.stat().st_size for f in DEFAULT_CHECKPOINT.iterdir())
    assert size < 32 * 2**20
    model, _ = load_model(DEFAULT_CHECKPOINT)
    assert sum(p.numel() for p in model.parameters()) == 26_233_372


@pytest.mark.parametrize("query, expected", [
    ("dim the kitchen to 10", [{"name": "set_lights", "arguments": {"room": "kitchen", "brightness": 10}}]),
    ("set a timer for 10 minutes", [{"name": "set_timer", "arguments": {"minutes": 10}}]),
    ("tell me a joke", []),
])
def test_shipped_model_answers(predictor, query, expected):
    pred = predictor.predict([(query, parse_tools(TOOLS))])[0]
    assert pred.calls == expected and pred.valid


def test_a_batch_answers_as_its_requests_do_one_at_a_time(predictor, monkeypatch):
    """Rows that finish leave the batch as it decodes (Session.keep); the others' answers do not change."""
    queries = ["tell me a joke", "dim the kitchen to 10", "set a timer for 10 minutes",
               "set a timer for 5 minutes and turn off the lights in the bedroom", "play some jazz in the living room"]
    requests = [(q, parse_tools(TOOLS)) for q in queries]
    kept, keep = [], Session.keep
    monkeypatch.setattr(Session, "keep", lambda sess, rows: kept.append(len(rows)) or keep(sess, rows))
    batched = [p.calls for p in predictor.predict(requests)]
    assert kept and kept[0] < len(queries)
    monkeypatch.setattr(predictor, "batch_size", 1)
    assert batched == [p.calls for p in predictor.predict(requests)]


def test_needle_run_uses_the_shipped_model_by_default():
    res = subprocess.run(["needle", "run", "set a timer for 10 minutes", "--tools", "examples/home_tools.json"],
                         capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parent.parent)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == [{"name": "set_timer", "arguments": {"minutes": 10}}]
