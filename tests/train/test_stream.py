"""Training straight from the generator: batches made in worker processes, resumable, no stored data."""
import json
import shutil

import torch
from safetensors.torch import load_file

from needle.data.generator import DEFAULT_MIX
from needle.tokenizer import Tokenizer, default_tokenizer_path
from needle.train.config import TrainConfig
from needle.train.loop import train
from needle.train.stream import GeneratedStream

OPTIONS = {"max_tools": 3, "max_tool_chars": 1200, "seed": 5, "val_examples": 40}


def _batches(stream, n):
    return [next(stream) for _ in range(n)]


def _same(a, b):
    return all(torch.equal(getattr(x, f), getattr(y, f)) for x, y in zip(a, b)
               for f in ("enc_ids", "enc_mask", "dec_in", "target", "weights"))


def test_stream_is_deterministic_across_workers_and_resumes_exactly():
    tok = Tokenizer.from_file(default_tokenizer_path())
    make = lambda workers, **pos: GeneratedStream({**OPTIONS, "workers": workers}, tok, 512, 128, 4000, 1, **pos)  # noqa: E731
    inline = make(0)
    first = _batches(inline, 5)
    assert _same(first, _batches(make(2), 5))  # two worker processes, same order
    pos = inline.position
    later = _batches(inline, 3)
    assert _same(later, _batches(make(0, **pos), 3))
    assert pos["chunk"] == 0 and pos["index"] == 5


def test_ranks_get_different_chunks():
    tok = Tokenizer.from_file(default_tokenizer_path())
    r0 = GeneratedStream(OPTIONS, tok, 512, 128, 4000, 1, rank=0, world=2)
    r1 = GeneratedStream(OPTIONS, tok, 512, 128, 4000, 1, rank=1, world=2)
    assert not _same(_batches(r0, 2), _batches(r1, 2))


def _cfg(out, **kw):
    base = dict(preset="tiny", generate={**OPTIONS, "workers": 1}, out_dir=str(out), max_steps=6,
                batch_tokens=3000, lr=2e-3, warmup_steps=2, eval_every=3, eval_batches=2, save_every=3,
                progress=False)
    return TrainConfig.from_dict({**base, **kw})


def test_train_on_generated_data_resumes_exactly(tmp_path):
    m = train(_cfg(tmp_path / "a"))
    assert m["step"] == 6 and "val_loss" in m
    straight = load_file(tmp_path / "a/step_0000006/model.safetensors")
    (tmp_path / "b").mkdir()
    shutil.copytree(tmp_path / "a/step_0000003", tmp_path / "b/step_0000003")
    (tmp_path / "b/latest").write_text("step_0000003\n")
    train(_cfg(tmp_path / "b"))
    resumed = load_file(tmp_path / "b/step_0000006/model.safetensors")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    state = json.loads((tmp_path / "b/step_0000006/trainer_state.json").read_text())
    assert set(state["position"]) == {"chunk", "index"}
    meta = json.loads((tmp_path / "b/step_0000006/metadata.json").read_text())  # the generator as it ran
    assert meta["generator"]["seed"] == OPTIONS["seed"] and meta["generator"]["mix"] == DEFAULT_MIX
