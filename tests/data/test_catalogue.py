"""The converted API catalogues (needle/data/pools/catalogue, built by scripts/convert_catalogues.py) load
and every tool is well formed: valid JSON Schema, sensible names, unique within a source."""
import gzip
import json
import re
from functools import cache
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import needle

DIR = Path(needle.__file__).resolve().parent / "data" / "pools" / "catalogue"
SOURCES = ("openapi", "google", "homeassistant")
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
SCALARS = {"string", "integer", "number", "boolean"}


@cache
def load(source: str) -> list[dict]:
    with gzip.open(DIR / f"{source}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _shallow(node: object) -> str:
    """The node with its subschemas emptied, description blanked and property names canonical.

    NOTE: check_schema on 8k tools costs ~6 s (the 2020-12 metaschema's $dynamicRef lookups). Metaschema
    validity is per node, only constrains `description` to be a string and leaves property names free,
    so checking every distinct shallow node (~2k) is exactly as strict and ten times faster."""
    if not isinstance(node, dict):
        return json.dumps(node)
    out = dict(node)
    if isinstance(out.get("description"), str):
        out["description"] = ""
    if isinstance(out.get("properties"), dict):
        names = {k: f"p{i}" for i, k in enumerate(out["properties"])}
        out["properties"] = {names[k]: {} for k in out["properties"]}
        if isinstance(out.get("required"), list):
            out["required"] = [names.get(r, r) if isinstance(r, str) else r for r in out["required"]]
    if isinstance(out.get("items"), dict):
        out["items"] = {}
    return json.dumps(out, sort_keys=True)


def _nodes(schema: dict):
    stack = [schema]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, dict):
            stack += list((node.get("properties") or {}).values()) + ([node["items"]] if "items" in node else [])


@pytest.mark.parametrize("source", SOURCES)
def test_files_load_with_the_documented_fields(source):
    tools = load(source)
    assert len(tools) >= 100
    for t in tools:
        assert list(t) == ["name", "description", "parameters", "source", "api", "category"]
        assert t["source"] == source and t["api"] and t["category"]
        assert 4 <= len(t["description"].split()) and len(t["description"]) <= 300


def test_enough_tools_in_total_and_small_files():
    assert sum(len(load(s)) for s in SOURCES) >= 2000
    assert sum((DIR / f"{s}.jsonl.gz").stat().st_size for s in SOURCES) <= 4_000_000
    for s in SOURCES:
        assert (DIR / f"{s}.jsonl.gz").read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime 0: reproducible bytes


@pytest.mark.parametrize("source", SOURCES)
def test_names_match_the_pattern_and_are_unique(source):
    names = [t["name"] for t in load(source)]
    assert all(NAME.match(n) for n in names), [n for n in names if not NAME.match(n)][:5]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("source", SOURCES)
def test_parameters_are_simple_described_objects(source):
    for t in load(source):
        params = t["parameters"]
        assert params["type"] == "object" and 1 <= len(params["properties"]) <= 8, t["name"]
        assert set(params["required"]) <= set(params["properties"]), t["name"]
        for prop in params["properties"].values():
            assert prop["type"] in SCALARS | {"array", "object"} and prop["description"], t["name"]
            if prop["type"] == "array":
                assert prop["items"]["type"] in SCALARS, t["name"]
            if prop["type"] == "object":
                assert all(p["type"] in SCALARS | {"array"} for p in prop["properties"].values()), t["name"]


def test_every_schema_passes_check_schema():
    shallow = {_shallow(node) for s in SOURCES for t in load(s) for node in _nodes(t["parameters"])}
    for node in shallow:
        Draft202012Validator.check_schema(json.loads(node))
