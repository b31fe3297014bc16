"""`needle download`: fetch a checkpoint from a Hugging Face model repository, check it, install it.

Only safetensors weights (whole or sharded), config, tokenizer and metadata are fetched, never a
pickle. The files land in a temporary directory next to the destination and are loaded once as a model
(the weights must match the config) before they are renamed into place, so an interrupted or broken
download never replaces a working checkpoint. Nothing here runs at import time or in the default
commands: every other command works offline.
"""
from __future__ import annotations

import datetime
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from needle.model.checkpoint import CheckpointError, load_model, replace_dir

ALLOW_PATTERNS = ["*.safetensors", "model.safetensors.index.json", "config.json", "tokenizer.json", "metadata.json"]
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class DownloadError(CheckpointError):
    pass


def models_dir() -> Path:
    """Where downloaded checkpoints go: $NEEDLE_HOME/models, else ~/.cache/needle/models."""
    home = os.environ.get("NEEDLE_HOME")
    return (Path(home) if home else Path.home() / ".cache" / "needle") / "models"


def fetch_snapshot(repo_id: str, revision: str | None, dest: Path) -> None:
    """Download the checkpoint files of `repo_id` at `revision` into `dest` (huggingface_hub)."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError
    except ImportError:
        raise DownloadError("needle download needs huggingface_hub: pip install 'needle[hub]' "
                            "(or pip install huggingface_hub)") from None
    try:
        snapshot_download(repo_id=repo_id, revision=revision, allow_patterns=ALLOW_PATTERNS, local_dir=dest)
    except RepositoryNotFoundError:
        raise DownloadError(f"no model repository {repo_id!r} on the Hub (or it is private: set HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise DownloadError(f"{repo_id} has no revision {revision!r}") from None
    except HfHubHTTPError as e:
        raise DownloadError(f"downloading {repo_id} failed: {e}") from None
    except OSError as e:  # no network, disk full
        raise DownloadError(f"downloading {repo_id} failed: {e}") from None


def download(repo_id: str, revision: str | None = None, output: str | Path | None = None,
             fetch: Callable[[str, str | None, Path], None] = fetch_snapshot) -> Path:
    """Fetch, verify and install a checkpoint; returns its directory (usable as --checkpoint)."""
    if not REPO_ID.match(repo_id):
        raise DownloadError(f"{repo_id!r} is not a Hub repository id (expected owner/name)")
    out = Path(output) if output else models_dir() / repo_id.replace("/", "--")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        fetch(repo_id, revision, tmp)
        shutil.rmtree(tmp / ".cache", ignore_errors=True)  # huggingface_hub's own bookkeeping
        try:
            model, _ = load_model(tmp)
        except CheckpointError as e:
            raise DownloadError(f"{repo_id} does not hold a usable Needle checkpoint: {e}") from None
        params = sum(p.numel() for p in model.parameters())
        (tmp / "source.json").write_text(json.dumps({
            "repo_id": repo_id, "revision": revision or "main", "parameters": params,
            "downloaded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}, indent=1))
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
