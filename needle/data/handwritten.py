"""Hand-written tools: one JSON file per personal-AI domain in pools/tools/ (format in FORMAT.md).

`load_handwritten()` returns ToolSpecs plus each domain's confusable groups and near-miss queries;
`check_files()` lists every problem (bad schema, unknown slot, missing required slot, a value that
fails its own schema...). Run `python -m needle.data.handwritten check [FILES]`.
"""
from __future__ import annotations

import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from needle.data.slots import ToolSpec, sample_value
from needle.data.values import POOL_NAMES, load_pools

TOOLS_DIR = Path(__file__).with_name("pools") / "tools"
SLOT = re.compile(r"\{(\w+)\}")
NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
MIN_TEMPLATES = 8


@dataclass
class Domain:
    name: str
    tools: list[ToolSpec]
    confusable_groups: list[list[str]]
    none_queries: list[str]


def _template(t) -> tuple[str, dict]:
    return (t, {}) if isinstance(t, str) else (t["text"], dict(t.get("fixed", {})))


def _spec(tool: dict, domain: str) -> ToolSpec:
    return ToolSpec(
        name=tool["name"], description=tool["description"], parameters=tool["parameters"], domain=domain,
        source="handwritten", templates=[_template(t) for t in tool["templates"]],
        indirect=[(i["text"], i["arguments"]) for i in tool.get("indirect", [])], values=tool.get("values", {}))


def load_domain(path: Path) -> Domain:
    data = json.loads(path.read_text(encoding="utf-8"))
    return Domain(data["domain"], [_spec(t, data["domain"]) for t in data["tools"]],
                  data.get("confusable_groups", []), data.get("none_queries", []))


def load_handwritten(directory: Path = TOOLS_DIR) -> list[Domain]:
    """Every domain file, sorted by file name (so tool order is stable across machines)."""
    return [load_domain(p) for p in sorted(Path(directory).glob("*.json"))]


def _check_values(tool: dict, problems: list[str]) -> None:
    props = tool["parameters"].get("properties", {})
    for slot, spec in tool.get("values", {}).items():
        if slot not in props:
            problems.append(f"values: {slot!r} is not a property")
        elif isinstance(spec, str) and (not spec.startswith("@") or spec[1:] not in POOL_NAMES):
            problems.append(f"values.{slot}: unknown pool {spec!r} (known: @{', @'.join(sorted(POOL_NAMES))})")
        elif isinstance(spec, list):
            bad = [v for v in spec if not Draft202012Validator(props[slot]).is_valid(v)]
            if not spec or bad:
                problems.append(f"values.{slot}: {bad[:3] or 'empty list'} fail the property's schema")
        elif isinstance(spec, dict) and not ({"min", "max"} <= spec.keys() or "items" in spec):
            problems.append(f"values.{slot}: a range needs min and max, an array spec needs items")


def _check_templates(tool: dict, problems: list[str]) -> None:
    params = tool["parameters"]
    props, required = params.get("properties", {}), set(params.get("required", []))
    templates = tool.get("templates", [])
    if len(templates) < MIN_TEMPLATES:
        problems.append(f"templates: {len(templates)} < {MIN_TEMPLATES}")
    for t in templates:
        text, fixed = _template(t)
        slots = SLOT.findall(text)
        if len(slots) != len(set(slots)):
            problems.append(f"template {text!r}: a slot appears twice")
        if not set(slots) <= set(props) or not set(fixed) <= set(props):
            problems.append(f"template {text!r}: names unknown properties")
            continue
        if missing := required - set(slots) - set(fixed):
            problems.append(f"template {text!r}: required {sorted(missing)} neither slot nor fixed")
        for s in slots:
            if props[s].get("type") == "boolean":
                problems.append(f"template {text!r}: boolean {s!r} must be fixed, not a slot")
            elif s not in tool.get("values", {}) and "enum" not in props[s]:
                problems.append(f"template {text!r}: no values for slot {s!r}")
        if fixed and not Draft202012Validator({**params, "required": []}).is_valid(fixed):
            problems.append(f"template {text!r}: fixed {fixed} fails the schema")


def _check_draws(tool: dict, problems: list[str]) -> None:
    """Fill each template a few times and validate the answers, as the generator will."""
    spec, pools, rng = _spec(tool, ""), load_pools(), random.Random(0)
    for text, fixed in spec.templates:
        for _ in range(4):
            args = dict(fixed)
            for s in SLOT.findall(text):
                args[s] = sample_value(rng, pools, s, spec.props[s], spec.values.get(s))[0]
            if err := next(iter(spec.validator.iter_errors(args)), None):
                problems.append(f"template {text!r}: drew {args} -> {err.message}")
                return
    for text, args in spec.indirect:
        if err := next(iter(spec.validator.iter_errors(args)), None):
            problems.append(f"indirect {text!r}: {err.message}")


def check_tool(tool: dict) -> list[str]:
    problems: list[str] = []
    for key in ("name", "description", "parameters", "templates"):
        if key not in tool:
            return [f"missing key {key!r}"]
    if not NAME.match(tool["name"]):
        problems.append(f"name {tool['name']!r} is not snake_case")
    try:
        Draft202012Validator.check_schema(tool["parameters"])
    except SchemaError as e:
        return problems + [f"parameters: invalid JSON Schema: {e.message}"]
    params = tool["parameters"]
    if params.get("type") != "object" or params.get("additionalProperties") is not False:
        problems.append("parameters: must be type object with additionalProperties false")
    problems += [f"property {k!r} has no description" for k, v in params.get("properties", {}).items()
                 if not v.get("description")]
    _check_values(tool, problems)
    _check_templates(tool, problems)
    if not problems:
        _check_draws(tool, problems)
    return problems


def check_files(paths: list[Path], all_names: set[str] | None = None) -> list[str]:
    """Problems in the given domain files, as 'file: tool: problem' lines; empty when all is well."""
    out, seen, loaded = [], {}, []
    for path in paths:
        try:
            loaded.append((path, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, json.JSONDecodeError) as e:
            out.append(f"{path}: cannot read: {e}")
    names = set(all_names or ()) | {t.get("name") for _, data in loaded for t in data.get("tools", [])}
    for path, data in loaded:
        for tool in data.get("tools", []):
            where = f"{path.name}: {tool.get('name', '?')}"
            if tool.get("name") in seen:
                out.append(f"{where}: name also used in {seen[tool['name']]}")
            seen[tool.get("name")] = path.name
            out += [f"{where}: {p}" for p in check_tool(tool)]
        for group in data.get("confusable_groups", []):
            if unknown := [n for n in group if n not in names]:
                out.append(f"{path.name}: confusable group names unknown tools {unknown}")
    return out


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "check":
        print("usage: python -m needle.data.handwritten check [FILES]", file=sys.stderr)
        return 2
    files = [Path(a) for a in argv[1:]] or sorted(TOOLS_DIR.glob("*.json"))
    every: set[str] = set()
    for path in sorted(TOOLS_DIR.glob("*.json")):  # names in other files, for confusable groups
        try:
            every |= {t.get("name") for t in json.loads(path.read_text(encoding="utf-8")).get("tools", [])}
        except (OSError, json.JSONDecodeError):
            pass  # reported below if it is one of the files being checked
    problems = check_files(files, every)
    for p in problems:
        print(p)
    print(f"{len(files)} files, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
