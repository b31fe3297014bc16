"""Google API discovery documents (bundled in `google-api-python-client`) -> tools.

One document per API family (scripts/api_tool_text.pick_documents: highest stable version). A method
becomes a tool named by its dotted id ("calendar.events.list") with its path/query parameters; a request
body becomes one nested `body` object (the client library's own argument name) when its writable
properties are few and simple, otherwise the method is skipped.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from .common import (MAX_PARAMS, PARAM_NAME, SCALARS, Skip, array_of, clean, first_sentences, object_schema,
                     param_description, scalar, sensible_tool_name, tool_description)

INT_FORMATS = {"int32", "uint32", "int64", "uint64"}
NUM_FORMATS = {"float", "double"}
FORMATS = {"google-datetime": "date-time", "date-time": "date-time", "date": "date"}


def walk_methods(resource: dict) -> Iterator[dict]:
    for _, method in sorted((resource.get("methods") or {}).items()):
        yield method
    for _, sub in sorted((resource.get("resources") or {}).items()):
        yield from walk_methods(sub)


def _scalar_type(p: dict) -> str:
    fmt = p.get("format")
    if fmt in INT_FORMATS:
        return "integer"
    if fmt in NUM_FORMATS:
        return "number"
    if fmt == "byte":
        raise Skip("file upload")
    typ = p.get("type", "string")
    if typ not in SCALARS:
        raise Skip(f"unsupported type {typ}")
    return typ


def _item_schema(p: dict) -> dict:
    return scalar(_scalar_type(p), enum=p.get("enum"), fmt=FORMATS.get(p.get("format")),
                  minimum=p.get("minimum"), maximum=p.get("maximum"))


def convert(p: dict, name: str, required: bool, schemas: dict, depth: int = 0) -> dict:
    """A discovery parameter or schema property as a JSON Schema property."""
    if not PARAM_NAME.match(name):
        raise Skip("odd parameter name")
    if p.get("deprecated"):
        raise Skip("deprecated parameter")
    desc = param_description(p.get("description"), name, required)
    if "$ref" in p:
        p = schemas.get(p["$ref"]) or {}
    if p.get("repeated"):
        return array_of(_item_schema(p), desc)
    if p.get("type") == "array":
        item = p.get("items") or {}
        if "$ref" in item or item.get("type") in ("object", "array", "any", None):
            raise Skip("array of non-scalars")
        return array_of(_item_schema(item), desc)
    if p.get("type") == "object" or "properties" in p:
        if depth > 0:
            raise Skip("nested object below one level")
        props, req = _properties(p, schemas, depth + 1)
        if not props:
            raise Skip("free-form or large object")
        return {"type": "object", "description": desc, "properties": props, **({"required": req} if req else {})}
    return scalar(_scalar_type(p), desc, enum=p.get("enum"), fmt=FORMATS.get(p.get("format")),
                  minimum=p.get("minimum"), maximum=p.get("maximum"), default=p.get("default"))


def _writable(prop: dict) -> bool:
    text = clean(prop.get("description")).lower()
    return not prop.get("readOnly") and not text.startswith(("output only", "[output only]", "[output-only]"))


def _properties(schema: dict, schemas: dict, depth: int) -> tuple[dict, list[str]]:
    props, required = {}, []
    for name, prop in sorted((schema.get("properties") or {}).items()):
        if not _writable(prop):
            continue
        try:
            props[name] = convert(prop, name, False, schemas, depth)
        except Skip:
            continue
    if len(props) > MAX_PARAMS:
        raise Skip("free-form or large object")
    return props, required


def _body(method: dict, schemas: dict) -> dict | None:
    ref = (method.get("request") or {}).get("$ref")
    if not ref:
        return None
    schema = schemas.get(ref) or {}
    try:
        props, _ = _properties(schema, schemas, 1)
    except Skip:
        raise Skip("large request body") from None
    if not props:
        raise Skip("free-form or array body")
    desc = first_sentences(clean(schema.get("description")), 200) or f"The {ref} resource."
    return {"type": "object", "description": desc, "properties": props}


def method_tool(method: dict, schemas: dict) -> dict:
    if method.get("deprecated"):
        raise Skip("deprecated")
    name = sensible_tool_name(method.get("id"))
    description = tool_description(method.get("description"))
    params = method.get("parameters") or {}
    order = list(method.get("parameterOrder") or [])
    order += sorted(k for k in params if k not in order)
    props, required = {}, []
    for key in order:
        p = params.get(key)
        if p is None:
            continue
        is_required = bool(p.get("required"))
        try:
            props[key] = convert(p, key, is_required, schemas)
        except Skip:
            if is_required:
                raise
            continue
        if is_required:
            required.append(key)
    body = _body(method, schemas)
    if body is not None:
        if "body" in props:
            raise Skip("parameter name clash")
        props["body"] = body
        required.append("body")
    return {"name": name, "description": description, "parameters": object_schema(props, required)}


def document_tools(doc: dict, drops: Counter) -> Iterator[dict]:
    """Tools of one discovery document with source/api/category/group fields; drops counted by reason."""
    schemas = doc.get("schemas") or {}
    api = doc.get("id") or f"{doc.get('name')}:{doc.get('version')}"
    for method in walk_methods(doc):
        try:
            tool = method_tool(method, schemas)
        except Skip as e:
            drops[str(e)] += 1
            continue
        yield {**tool, "source": "google", "api": api, "category": doc["name"], "group": api}
