"""Tool-call examples: parse every accepted input form into one normalised form, and validate.

Accepted: tools in the OpenAI function format, with or without the {"type":"function","function":{}}
wrapper, or Needle 1's flat form (`"parameters": {"city": {"type": "string", "required": true}}`);
`tools` and `answers` as lists or JSON-encoded strings. Calls are checked against their tool's JSON
Schema with `jsonschema`. Every problem raises DataError naming the place (file:line) and the field.
"""
from __future__ import annotations

import functools
import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

MAX_QUERY_CHARS = 20_000

# Python-ish and common misspelled type names people put in tool schemas.
TYPE_ALIASES = {"str": "string", "text": "string", "int": "integer", "float": "number", "double": "number",
                "bool": "boolean", "list": "array", "tuple": "array", "dict": "object", "none": "null"}
JSON_TYPES = {"string", "integer", "number", "boolean", "array", "object", "null"}


class DataError(ValueError):
    """A malformed example; the message names where (file:line) and which field."""

    def __init__(self, where: str, field_name: str, problem: str):
        self.where, self.field, self.problem = where, field_name, problem
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}field '{field_name}': {problem}")


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict  # a JSON Schema object: {"type": "object", "properties": {...}, "required": [...]}

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass(frozen=True)
class Call:
    name: str
    arguments: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class Example:
    query: str
    tools: list[Tool]
    answers: list[Call]

    def to_dict(self) -> dict:
        return {"query": self.query, "tools": [t.to_dict() for t in self.tools],
                "answers": [c.to_dict() for c in self.answers]}


def _maybe_json(value: Any, where: str, name: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise DataError(where, name, f"is a string but not valid JSON ({e.msg} at char {e.pos})") from None
    return value


def _normalise_types(schema: Any, where: str, path: str) -> Any:
    """Map type aliases ("int", "float", ...) to JSON Schema types, recursively; reject unknown types."""
    if isinstance(schema, list):
        return [_normalise_types(s, where, f"{path}[{i}]") for i, s in enumerate(schema)]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "type":
            types = value if isinstance(value, list) else [value]
            mapped = []
            for t in types:
                t2 = TYPE_ALIASES.get(t.lower(), t.lower()) if isinstance(t, str) else t
                if t2 not in JSON_TYPES:
                    raise DataError(where, f"{path}.type", f"unknown type {t!r}; use one of {sorted(JSON_TYPES)}")
                mapped.append(t2)
            out[key] = mapped if isinstance(value, list) else mapped[0]
        elif key in ("properties", "$defs", "definitions", "patternProperties") and isinstance(value, dict):
            out[key] = {k: _normalise_types(v, where, f"{path}.{key}.{k}") for k, v in value.items()}
        elif key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "not", "prefixItems"):
            out[key] = _normalise_types(value, where, f"{path}.{key}")
        else:
            out[key] = value
    return out


@functools.lru_cache(maxsize=65536)
def _schema_problem(schema_json: str) -> tuple[str, str] | None:
    # Cached: datasets repeat the same tools thousands of times and check_schema costs ~1 ms.
    try:
        Draft202012Validator.check_schema(json.loads(schema_json))
    except jsonschema.SchemaError as e:
        return ".".join(str(p) for p in e.absolute_path), e.message
    return None


@functools.lru_cache(maxsize=65536)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def value_validator(schema: dict) -> Draft202012Validator:
    """The validator of one argument's schema, as `call_problems` judges values (`.is_valid(value)`); cached."""
    return _validator(json.dumps(schema, sort_keys=True))


def _is_flat_form(params: dict) -> bool:
    return (params.get("type") != "object" and "properties" not in params and bool(params)
            and all(isinstance(v, dict) and ("type" in v or "description" in v) for v in params.values()))


def _flat_to_schema(params: dict) -> dict:
    props, required = {}, []
    for name, spec in params.items():
        spec = dict(spec)
        if spec.pop("required", False) is True:
            required.append(name)
        props[name] = spec
    return {"type": "object", "properties": props, "required": required}


def parse_parameters(params: Any, where: str, path: str) -> dict:
    params = _maybe_json(params, where, path)
    if params is None:
        return {"type": "object", "properties": {}}
    if not isinstance(params, dict):
        raise DataError(where, path, f"must be an object (JSON Schema), got {type(params).__name__}")
    if _is_flat_form(params):
        params = _flat_to_schema(params)
    params = _normalise_types(params, where, path)
    if params.get("type", "object") != "object":
        raise DataError(where, path, f"must describe an object, got type {params.get('type')!r}")
    params = {"type": "object", **params}
    params.setdefault("properties", {})
    problem = _schema_problem(json.dumps(params, sort_keys=True))
    if problem:
        loc, message = problem
        raise DataError(where, f"{path}.{loc}" if loc else path, f"invalid JSON Schema: {message}")
    for name in params.get("required", []):
        if name not in params["properties"]:
            raise DataError(where, f"{path}.required", f"names {name!r}, which is not among the properties")
    return params


def parse_tool(obj: Any, where: str = "", path: str = "tool") -> Tool:
    obj = _maybe_json(obj, where, path)
    if not isinstance(obj, dict):
        raise DataError(where, path, f"must be an object, got {type(obj).__name__}")
    if obj.get("type") == "function" and isinstance(obj.get("function"), dict):
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DataError(where, f"{path}.name", "missing or not a non-empty string")
    desc = obj.get("description", "")
    if not isinstance(desc, str):
        raise DataError(where, f"{path}.description", f"must be a string, got {type(desc).__name__}")
    return Tool(name, desc, parse_parameters(obj.get("parameters"), where, f"{path}.parameters"))


def parse_tools(value: Any, where: str = "", path: str = "tools") -> list[Tool]:
    value = _maybe_json(value, where, path)
    if value is None:
        return []
    if isinstance(value, dict):  # a single tool given bare
        value = [value]
    if not isinstance(value, list):
        raise DataError(where, path, f"must be a list of tools, got {type(value).__name__}")
    tools = [parse_tool(t, where, f"{path}[{i}]") for i, t in enumerate(value)]
    seen = set()
    for i, t in enumerate(tools):
        if t.name in seen:
            raise DataError(where, f"{path}[{i}].name", f"duplicate tool name {t.name!r}")
        seen.add(t.name)
    return tools


def parse_call(obj: Any, where: str = "", path: str = "call") -> Call:
    if not isinstance(obj, dict):
        raise DataError(where, path, f"must be an object with name and arguments, got {type(obj).__name__}")
    if obj.get("type") == "function" and isinstance(obj.get("function"), dict):
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise DataError(where, f"{path}.name", "missing or not a non-empty string")
    args = _maybe_json(obj.get("arguments", {}), where, f"{path}.arguments")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise DataError(where, f"{path}.arguments", f"must be an object, got {type(args).__name__}")
    return Call(name, args)


def parse_calls(value: Any, where: str = "", path: str = "answers") -> list[Call]:
    value = _maybe_json(value, where, path)
    if value is None:
        return []
    if not isinstance(value, list):
        raise DataError(where, path, f"must be a list of calls, got {type(value).__name__}")
    return [parse_call(c, where, f"{path}[{i}]") for i, c in enumerate(value)]


def validate_call(call: Call, tools: list[Tool], where: str = "", path: str = "call") -> None:
    by_name = {t.name: t for t in tools}
    if call.name not in by_name:
        raise DataError(where, f"{path}.name", f"tool {call.name!r} is not among the offered tools {sorted(by_name)}")
    validator = _validator(json.dumps(by_name[call.name].parameters, sort_keys=True))
    error = jsonschema.exceptions.best_match(validator.iter_errors(call.arguments))
    if error is not None:
        loc = ".".join(str(p) for p in error.absolute_path)
        raise DataError(where, f"{path}.arguments{'.' + loc if loc else ''}", error.message)


def call_problems(calls: list[dict], tools: list[Tool]) -> list[str]:
    """What is wrong with generated calls ({"name", "arguments"} dicts) against the offered tools; [] if nothing."""
    problems = []
    for i, c in enumerate(calls):
        try:
            validate_call(Call(c["name"], c["arguments"]), tools, path=f"call {i}")
        except DataError as e:
            problems.append(str(e))
    return problems


def parse_query(value: Any, where: str = "") -> str:
    if not isinstance(value, str):
        raise DataError(where, "query", f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise DataError(where, "query", "is empty")
    if len(value) > MAX_QUERY_CHARS:
        raise DataError(where, "query", f"has {len(value)} characters, more than the limit of {MAX_QUERY_CHARS}")
    return value


def parse_example(obj: Any, where: str = "", validate: bool = True) -> Example:
    if not isinstance(obj, dict):
        raise DataError(where, "<line>", f"must be a JSON object, got {type(obj).__name__}")
    query = parse_query(obj.get("query"), where)
    tools = parse_tools(obj.get("tools"), where)
    if "answers" not in obj:
        raise DataError(where, "answers", "missing (use [] when no tool should be called)")
    answers = parse_calls(obj["answers"], where)
    if validate:
        for i, call in enumerate(answers):
            validate_call(call, tools, where, f"answers[{i}]")
    return Example(query, tools, answers)


def open_text(path: str | Path):
    """Open a text file for reading, transparently gunzipping `.gz` files."""
    if str(path).endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_jsonl(path: str | Path, errors: str = "raise", skipped: list | None = None) -> Iterator[Example]:
    """Yield examples from a JSONL file. errors="skip" collects DataErrors into `skipped` instead of raising."""
    for example, _ in read_jsonl_meta(path, errors, skipped):
        yield example


def read_jsonl_meta(path: str | Path, errors: str = "raise",
                    skipped: list | None = None) -> Iterator[tuple[Example, dict | None]]:
    """Like read_jsonl, with each line's optional "meta" object (the generator's call type...)."""
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
    with open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(where, "<line>", f"not valid JSON ({e.msg} at char {e.pos})") from None
                meta = obj.get("meta") if isinstance(obj, dict) else None
                yield parse_example(obj, where), meta if isinstance(meta, dict) else None
            except DataError as e:
                if errors == "raise":
                    raise
                if skipped is not None:
                    skipped.append(e)


def write_jsonl(examples: list, path: str | Path) -> None:
    """Write examples (Example or dict) atomically: a crash never leaves half a file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        for ex in examples:
            d = ex.to_dict() if hasattr(ex, "to_dict") else ex
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
