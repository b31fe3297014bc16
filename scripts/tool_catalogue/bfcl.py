"""Contamination guard: the function names and descriptions of BFCL (our evaluation set), read from the
`bfcl-eval` wheel at build time and never written into the repository.

A converted tool is dropped when its name equals a BFCL function's full dotted name or last component
(case-insensitive, ignoring `_`, `.` and `-`), or its description equals a BFCL description.
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from .common import clean, first_sentences

_TOOL_DESC = re.compile(r"Tool description:\s*(.*)$", re.DOTALL)  # multi-turn docs prefix "This tool belongs to ..."


def norm_name(name: str) -> str:
    return re.sub(r"[_.\-]", "", name.lower())


def norm_desc(text: str) -> str:
    return " ".join(clean(text).lower().split()).rstrip(".")


def _functions(wheel: zipfile.ZipFile):
    for path in sorted(wheel.namelist()):
        base = path.rsplit("/", 1)[-1]
        if "/data/" not in path or not base.endswith(".json") or "possible_answer" in path:
            continue
        if not (base.startswith("BFCL_") or "/multi_turn_func_doc/" in path):
            continue
        text = wheel.read(path).decode("utf-8")
        try:
            objs = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError:  # one plain JSON document (format_sensitivity: lists of ids)
            objs = [json.loads(text)]
        for obj in objs:
            if not isinstance(obj, dict):
                continue
            if "/multi_turn_func_doc/" in path:
                yield obj
            yield from obj.get("function") or []


class Guard:
    """Names and descriptions to keep out; `reason(tool)` says why a tool matches, or ''."""

    def __init__(self, wheel_path: Path):
        self.names: set[str] = set()
        self.descriptions: set[str] = set()
        self.functions = 0
        with zipfile.ZipFile(wheel_path) as wheel:
            for fn in _functions(wheel):
                if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                    continue
                self.functions += 1
                self.names |= {norm_name(fn["name"]), norm_name(fn["name"].rsplit(".", 1)[-1])}
                desc = fn.get("description") or ""
                m = _TOOL_DESC.search(desc)
                for text in (desc, m.group(1) if m else ""):
                    if text:
                        self.descriptions |= {norm_desc(text), norm_desc(first_sentences(clean(text), 300))}
        self.descriptions.discard("")

    def reason(self, tool: dict) -> str:
        if norm_name(tool["name"]) in self.names:
            return "BFCL function name"
        if norm_desc(tool["description"]) in self.descriptions:
            return "BFCL description"
        return ""
