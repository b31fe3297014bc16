import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from needle.data.generator import DEFAULT_MIX, DEFAULT_SOURCES
from needle.data.procedural import generate_examples
from needle.data.schema import write_jsonl
from needle.model import checkpoint as ckpt_mod
from needle.model.checkpoint import load_model, resolve_checkpoint, save_checkpoint
from needle.model.config import NeedleConfig
from needle.tokenizer import default_tokenizer_path
from needle.train.config import TrainConfig, load_config, parse_override
from needle.train.loop import train
from needle.train.optim import wsd_lr
from needle.train.stream import gen_config


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    write_jsonl(generate_examples(300, seed=3), path)
    return path


def _cfg(data_file, out, **kw):
    base = dict(preset="tiny", train_data=[str(data_file)], out_dir=str(out), max_steps=6, batch_tokens=3000,
                lr=2e-3, warmup_steps=2, eval_every=3, eval_batches=2, save_every=3, progress=False)
    return TrainConfig.from_dict({**base, **kw})


def test_loss_goes_down(data_file, tmp_path):
    m = train(_cfg(data_file, tmp_path / "run", max_steps=30, eval_every=30, save_every=30, lr=3e-3))
    first = json.loads((tmp_path / "run/metrics.jsonl").read_text().splitlines()[0])
    assert m["loss"] < 0.7 * first["loss"] and 0 < m["val_token_acc"] <= 1
    # value and name tokens are scored on their own; values (copied from the request) lag the rest early on
    assert 0 <= m["val_value_acc"] < m["val_token_acc"] and 0 <= m["val_name_acc"] <= 1
    assert 0 < m["data_wait_s"] < m["elapsed_s"]  # time spent waiting for batches, part of the elapsed time


def test_freeze_encoder_trains_only_the_decoder(data_file, tmp_path):
    train(_cfg(data_file, tmp_path / "a", max_steps=3))
    start = load_file(tmp_path / "a/step_0000003/model.safetensors")
    m = train(_cfg(data_file, tmp_path / "b", init_from=str(tmp_path / "a"), freeze_encoder=True, max_steps=8,
                   save_every=8, eval_every=8))
    after = load_file(tmp_path / "b/step_0000008/model.safetensors")
    frozen = [k for k in start if k.startswith(("encoder.", "encoder_norm."))]
    assert frozen and all(torch.equal(start[k], after[k]) for k in frozen)
    assert not torch.equal(start["embed.weight"], after["embed.weight"])
    decoder_out = [k for k in start if k.startswith("decoder.") and k.endswith("wo.weight")]
    assert decoder_out and all(not torch.equal(start[k], after[k]) for k in decoder_out)
    opt_names = {k.split("::")[0] for k in load_file(tmp_path / "b/step_0000008/optimizer.safetensors")}
    assert opt_names and not any(n.startswith("encoder") for n in opt_names)
    full = train(_cfg(data_file, tmp_path / "c", init_from=str(tmp_path / "a"), max_steps=8, save_every=8,
                      eval_every=8))
    assert 0 < m["flops"] < full["flops"]  # the frozen encoder runs forward only


def test_resume_is_exact(data_file, tmp_path):
    train(_cfg(data_file, tmp_path / "a"))
    straight = load_file(tmp_path / "a/step_0000006/model.safetensors")
    (tmp_path / "b").mkdir()
    shutil.copytree(tmp_path / "a/step_0000003", tmp_path / "b/step_0000003")
    (tmp_path / "b/latest").write_text("step_0000003\n")
    train(_cfg(data_file, tmp_path / "b"))
    resumed = load_file(tmp_path / "b/step_0000006/model.safetensors")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    state = json.loads((tmp_path / "b/step_0000006/trainer_state.json").read_text())
    assert state["step"] == 6 and state["position"]["index"] > 0


def test_checkpoint_directory_is_complete_and_loads_without_pickle(data_file, tmp_path):
    train(_cfg(data_file, tmp_path / "run", max_steps=3))
    path = resolve_checkpoint(tmp_path / "run")
    names = {p.name for p in path.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "metadata.json", "optimizer.safetensors",
            "trainer_state.json"} <= names
    assert not any(n.endswith((".pt", ".pth", ".bin", ".pkl")) for n in names)
    model, _ = load_model(tmp_path / "run")
    assert model.cfg.d_model == 128


def test_crash_mid_save_keeps_previous_checkpoint(tiny_model, tmp_path, monkeypatch):
    path = tmp_path / "ckpt"
    save_checkpoint(path, tiny_model, default_tokenizer_path(), {"v": 1})
    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(ckpt_mod, "save_file", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, tiny_model, default_tokenizer_path(), {"v": 2})
    assert json.loads((path / "metadata.json").read_text()) == {"v": 1}
    load_model(path)


def test_config_files_and_overrides(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('preset = "tiny"\nlr = 0.001\n[model]\nd_model = 64\n')
    cfg = load_config(f, ["lr=3e-4", "model.n_heads=2", "out_dir=runs/x", 'train_data=["a.jsonl"]'])
    assert cfg.lr == 3e-4 and cfg.model == {"d_model": 64, "n_heads": 2} and cfg.out_dir == "runs/x"
    assert cfg.train_data == ["a.jsonl"]
    with pytest.raises(ValueError, match="unknown train config keys"):
        load_config(f, ["learning_rate=1"])
    assert parse_override("bf16=false") == (["bf16"], False)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.toml")


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_run_configs_are_valid(path):
    """Every run config in configs/ parses, names a real preset and, when it generates data, a valid generator."""
    cfg = load_config(path)
    assert NeedleConfig.from_name(cfg.preset, **cfg.model).vocab_size > 0
    if cfg.generate:
        gen_config(cfg.generate)
    assert cfg.time_limit_s or cfg.max_steps < 1_000_000, "an open-ended run needs a time limit"


def test_generate_weights_named_in_a_run_config_change_only_those_kinds(tmp_path):
    """`generate.mix.none=0.16` doubles the no-call share of the default mix; it does not train on no-call
    requests alone (the table replaced the whole mix before)."""
    f = tmp_path / "run.toml"
    f.write_text('task = "posttrain"\npreset = "tiny"\n[generate]\nseed = 3\n')
    cfg = gen_config(load_config(f, ["generate.mix.none=0.16", "generate.mix.positional=0",
                                     "generate.sources.invented=0.5"]).generate)
    assert cfg.mix == {**DEFAULT_MIX, "none": 0.16, "positional": 0} and cfg.mix["single"] == DEFAULT_MIX["single"]
    assert cfg.sources == {**DEFAULT_SOURCES, "invented": 0.5}
    assert gen_config({"seed": 1}).mix == DEFAULT_MIX
    with pytest.raises(ValueError, match="mix"):
        gen_config({"mix": {"bogus": 1.0}})
    with pytest.raises(ValueError, match="table of weights"):
        gen_config({"mix": 0.5})


def test_wsd_schedule():
    lrs = [wsd_lr(s, 100, 1.0, 10, 0.2) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == 1.0 and lrs[50] == 1.0 and lrs[79] == 1.0
    assert lrs[80] == 1.0 and lrs[99] == pytest.approx(0.05) and lrs == sorted(lrs[:10]) + lrs[10:]


def test_pretrain_on_plain_text(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("\n\n".join(f"Paragraph {i}: the quick brown fox jumps over the lazy dog." for i in range(400)))
    m = train(_cfg(text, tmp_path / "pre", task="pretrain", text_enc_len=32, text_dec_len=16, max_steps=4))
    assert m["step"] == 4 and "val_loss" in m


@pytest.mark.slow
def test_ddp_two_cpu_processes(data_file, tmp_path):
    cfg = tmp_path / "ddp.toml"
    cfg.write_text(f'preset = "tiny"\ntrain_data = ["{data_file}"]\nout_dir = "{tmp_path / "ddp"}"\n'
                   "max_steps = 4\nbatch_tokens = 3000\neval_every = 4\neval_batches = 2\nsave_every = 2\nthreads = 1\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
                          "-m", "needle.cli", "train", str(cfg), "progress=false"], capture_output=True, text=True,
                         env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads(res.stdout.strip().splitlines()[-1])
    assert metrics["step"] == 4
    state = json.loads((resolve_checkpoint(tmp_path / "ddp") / "trainer_state.json").read_text())
    assert state["step"] == 4


def test_wsd_schedule_by_time_fraction():
    assert wsd_lr(50, 10**6, 1.0, 10, 0.3, 0.1, time_frac=0.5) == 1.0
    assert wsd_lr(50, 10**6, 1.0, 10, 0.3, 0.1, time_frac=0.85) == pytest.approx(0.55)
    assert wsd_lr(50, 10**6, 1.0, 10, 0.3, 0.1, time_frac=1.2) == pytest.approx(0.1)
    assert wsd_lr(3, 10**6, 1.0, 10, 0.3, time_frac=0.9) == pytest.approx(0.4)  # warmup still counts steps


def test_time_limit_stops_saves_and_resumes(data_file, tmp_path):
    m = train(_cfg(data_file, tmp_path / "run", max_steps=10**6, time_limit_s=3, save_every=10**6, eval_every=10**6))
    state = json.loads((resolve_checkpoint(tmp_path / "run") / "trainer_state.json").read_text())
    assert 0 < m["step"] == state["step"] < 10**6 and "val_loss" in m and state["elapsed"] >= 3
    again = train(_cfg(data_file, tmp_path / "run", max_steps=10**6, time_limit_s=3, save_every=10**6))
    assert again == {}  # the budget is spent: nothing more to do


def test_sharded_export_loads_the_same_model(data_file, tmp_path):
    from needle.model.checkpoint import export_checkpoint
    train(_cfg(data_file, tmp_path / "run", max_steps=3))
    out = export_checkpoint(tmp_path / "run", tmp_path / "export", torch.bfloat16, max_shard_bytes=2_200_000)
    shards = sorted(out.glob("model-*.safetensors"))
    assert len(shards) > 1 and all(p.stat().st_size <= 2_200_000 + 8192 for p in shards)
    assert not (out / "model.safetensors").exists() and not (out / "optimizer.safetensors").exists()
    a, _ = load_model(tmp_path / "run")
    b, _ = load_model(out)
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa.to(torch.bfloat16).float(), pb), name
    with pytest.raises(ValueError, match="more than a shard"):
        export_checkpoint(tmp_path / "run", tmp_path / "x", max_shard_bytes=1000)
