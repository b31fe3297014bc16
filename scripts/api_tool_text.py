"""Emit tool-schema text converted from Google API discovery documents.

Source: the discovery documents shipped inside the PyPI package
`google-api-python-client` (googleapiclient/discovery_cache/documents/*.json),
so no network is needed once the package is installed:

    pip install google-api-python-client
    python scripts/api_tool_text.py --out corpus/api_tools.jsonl

Every API method becomes one tool in the OpenAI function format the model sees:
{"name", "description", "parameters": JSON Schema object}. Names vary between the
dotted method id ("calendar.events.insert"), its snake_case form
("calendar_events_insert") and a short snake_case form ("events_insert"), so the
tokenizer sees the naming styles real tool lists use. Each output line is
{"tools": [...]} holding 1-5 tools of one API, like a real offered-tools list.

Only one version of each API is used (highest stable version, else highest
pre-release), at most --max-methods methods per API, each method written
--repeats times in different groupings/name styles. Output is deterministic for
a given package version and --seed; the package name and version are written to
<out>.sources.json for scripts/train_tokenizer.py to record.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from importlib import metadata
from pathlib import Path

PACKAGE = "google-api-python-client"
MAX_DESC_METHOD = 300
MAX_DESC_PARAM = 150
MAX_ENUM = 30
TYPE_MAP = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}
INT_FORMATS = {"int32", "uint32", "int64", "uint64"}
NUM_FORMATS = {"float", "double"}
_VERSION = re.compile(r"v(\d+)(?:[.](\d+))?(\w*)$")


def documents_dir() -> Path:
    import googleapiclient  # imported late: only this function needs the package

    return Path(googleapiclient.__file__).resolve().parent / "discovery_cache" / "documents"


def trim(text: str | None, limit: int) -> str:
    """Whitespace-collapsed text cut at a word boundary to at most ~limit chars."""
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "..."


def snake(name: str) -> str:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    name = re.sub(r"[^A-Za-z0-9]+", "_", name)
    return name.strip("_").lower()


def version_key(version: str) -> tuple[str, tuple]:
    """(family, rank): family separates sub-APIs sharing a name ("directory_v1"
    vs "reports_v1" of admin); rank puts stable versions above pre-releases,
    then orders by version number."""
    m = _VERSION.search(version)
    if not m:  # "alpha", "beta": pre-releases of the main family
        return "", (0, 0, 0, version)
    family = version[:m.start()].rstrip("_.")
    major, minor, rest = int(m.group(1)), int(m.group(2) or 0), m.group(3)
    return family, (0 if rest else 1, major, minor, version)


def pick_documents(doc_dir: Path) -> list[dict]:
    """One discovery document per API (name + family), sorted."""
    best: dict[tuple[str, str], tuple[tuple, dict]] = {}
    for path in sorted(doc_dir.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        name = doc.get("name")
        if not name:
            continue
        family, rank = version_key(doc.get("version", ""))
        if (name, family) not in best or rank > best[name, family][0]:
            best[name, family] = (rank, doc)
    return [best[k][1] for k in sorted(best)]


def walk_methods(resource: dict):
    for _, method in sorted(resource.get("methods", {}).items()):
        yield method
    for _, sub in sorted(resource.get("resources", {}).items()):
        yield from walk_methods(sub)


def param_schema(p: dict) -> dict:
    fmt = p.get("format")
    typ = TYPE_MAP.get(p.get("type"), "string")
    if fmt in INT_FORMATS:
        typ = "integer"
    elif fmt in NUM_FORMATS:
        typ = "number"
    schema: dict = {"type": typ}
    enum = p.get("enum")
    if enum and len(enum) <= MAX_ENUM:
        schema["enum"] = list(enum)
    desc = trim(p.get("description"), MAX_DESC_PARAM)
    if desc:
        schema["description"] = desc
    if p.get("repeated"):  # repeated query parameter -> array of the item type
        items = {k: v for k, v in schema.items() if k != "description"}
        return {"type": "array", "items": items, **({"description": desc} if desc else {})}
    return schema


def method_tool(method: dict, style: int) -> dict:
    mid = method["id"]
    parts = mid.split(".")
    if style == 0:
        name = mid
    elif style == 1:
        name = "_".join(snake(x) for x in parts)
    else:
        name = "_".join(snake(x) for x in parts[-2:])
    params = method.get("parameters", {})
    order = list(method.get("parameterOrder", []))
    order += sorted(k for k in params if k not in order)
    props = {k: param_schema(params[k]) for k in order if k in params}
    required = [k for k in order if params.get(k, {}).get("required")]
    schema: dict = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return {
        "name": name,
        "description": trim(method.get("description"), MAX_DESC_METHOD),
        "parameters": schema,
    }


def api_lines(doc: dict, rng: random.Random, max_methods: int, repeats: int) -> list[list[dict]]:
    methods = [m for m in walk_methods(doc) if m.get("id")]
    if len(methods) > max_methods:
        methods = rng.sample(methods, max_methods)
    lines = []
    for _ in range(repeats):
        order = methods[:]
        rng.shuffle(order)
        i = 0
        while i < len(order):
            k = rng.randint(1, 5)
            style = rng.randrange(3)
            lines.append([method_tool(m, style) for m in order[i:i + k]])
            i += k
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("corpus/api_tools.jsonl"))
    ap.add_argument("--documents", type=Path, default=None,
                    help="discovery documents folder (default: the installed package's)")
    ap.add_argument("--max-methods", type=int, default=250, help="cap on methods used per API")
    ap.add_argument("--repeats", type=int, default=3, help="times each chosen method is written")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    doc_dir = args.documents or documents_dir()
    docs = pick_documents(doc_dir)
    rng = random.Random(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    n_lines = n_tools = 0
    with open(args.out, "w", encoding="utf-8") as f:
        for doc in docs:
            for tools in api_lines(doc, rng, args.max_methods, args.repeats):
                f.write(json.dumps({"tools": tools}, ensure_ascii=False) + "\n")
                n_lines += 1
                n_tools += len(tools)
    size = args.out.stat().st_size
    sources = {
        "name": "google-api-discovery",
        "package": PACKAGE,
        "version": metadata.version(PACKAGE),
        "apis": len(docs),
        "max_methods": args.max_methods,
        "repeats": args.repeats,
        "seed": args.seed,
        "lines": n_lines,
        "bytes": size,
    }
    args.out.with_suffix(".sources.json").write_text(json.dumps(sources, indent=2) + "\n", encoding="utf-8")
    print(f"{len(docs)} APIs, {n_lines} lines, {n_tools} tools, {size / 1e6:.1f} MB -> {args.out}")


if __name__ == "__main__":
    main()
