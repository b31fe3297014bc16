"""`needle download` without the network: the Hub fetch is replaced by a copy of a local checkpoint."""
import shutil
import subprocess
import sys

import pytest

from needle.model.checkpoint import export_checkpoint, load_model
from needle.model.download import DownloadError, download


def _copier(src):
    def fetch(repo_id, revision, dest):
        for f in src.iterdir():
            shutil.copyfile(f, dest / f.name)
    return fetch


def test_download_verifies_and_installs_atomically(tiny_checkpoint, tmp_path):
    sharded = export_checkpoint(tiny_checkpoint, tmp_path / "remote", max_shard_bytes=3_000_000)
    out = download("someone/needle-test", "v1", tmp_path / "models/x", fetch=_copier(sharded))
    model, _ = load_model(out)
    assert (out / "source.json").is_file() and "v1" in (out / "source.json").read_text()
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copyfile(sharded / "config.json", broken / "config.json")  # no weights, no tokenizer
    with pytest.raises(DownloadError, match="not hold a usable Needle checkpoint"):
        download("someone/needle-test", None, out, fetch=_copier(broken))
    load_model(out)  # the installed checkpoint survived the failed update
    assert not list(out.parent.glob(".x.part-*"))


def test_bad_repo_id_and_default_checkpoint_env(tiny_checkpoint, monkeypatch):
    with pytest.raises(DownloadError, match="owner/name"):
        download("not a repo", fetch=_copier(tiny_checkpoint))
    from needle.infer.predict import default_checkpoint
    monkeypatch.setenv("NEEDLE_CHECKPOINT", str(tiny_checkpoint))
    assert str(default_checkpoint()) == str(tiny_checkpoint)


def test_cli_says_what_is_missing_without_a_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "needle.cli", "download", "bad id", "--output", str(tmp_path / "m")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "owner/name" in r.stderr and "Traceback" not in r.stderr


def test_without_huggingface_hub_the_error_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if it were not installed
    with pytest.raises(DownloadError, match="pip install"):
        download("someone/needle-test", output=tmp_path / "m")
