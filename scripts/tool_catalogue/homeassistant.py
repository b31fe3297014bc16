"""Home Assistant services (the `homeassistant` wheel, read without installing it) -> tools.

Each `homeassistant/components/<domain>/services.yaml` lists services, their fields and selectors; the
English names and descriptions live in the component's strings.json (with `[%key:...%]` references into
other strings files). A service becomes the tool "<domain>.<service>"; a `target` becomes a required
`entity_id` string; selectors map to JSON Schema types (number -> integer/number with min/max, select ->
enum, duration/location -> one nested object, ...).
"""
from __future__ import annotations

import json
import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import yaml

from .common import PARAM_NAME, Skip, array_of, object_schema, param_description, scalar, tool_description

_KEY = re.compile(r"\[%key:([^%]+)%\]")
SERVICES = re.compile(r"homeassistant/components/\w+/services\.yaml")
STRING_SELECTORS = {"text", "device", "area", "floor", "label", "config_entry", "addon", "app", "icon", "theme",
                    "conversation_agent", "backup_location", "language", "template", "state", "statistic",
                    "country", "assist_pipeline", "attribute", "zone", "entity", None}
FORMAT_SELECTORS = {"date": "date", "datetime": "date-time", "time": "time"}


class Strings:
    """English strings of the wheel's components, resolving `[%key:component::x::a::b%]` references."""

    def __init__(self, wheel: zipfile.ZipFile):
        self.wheel, self.cache = wheel, {}

    def file(self, component: str | None) -> dict:
        path = f"homeassistant/components/{component}/strings.json" if component else "homeassistant/strings.json"
        if path not in self.cache:
            try:
                self.cache[path] = json.loads(self.wheel.read(path))
            except KeyError:  # a component without strings.json: its services.yaml may carry the texts
                self.cache[path] = {}
        return self.cache[path]

    def lookup(self, key: str) -> str:
        parts = key.split("::")
        node: object = self.file(parts[1]) if parts[0] == "component" else self.file(None)
        for part in parts[2:] if parts[0] == "component" else parts:
            node = node.get(part) if isinstance(node, dict) else None
        return node if isinstance(node, str) else ""

    def resolve(self, text: object) -> str:
        text = text if isinstance(text, str) else ""
        for _ in range(5):  # references may point at text that holds references
            text = _KEY.sub(lambda m: self.lookup(m.group(1)), text)
        return text


def _number(sel: dict, desc: str, default) -> dict:
    step = sel.get("step", 1)
    whole = all(isinstance(v, int) or (isinstance(v, float) and v.is_integer())
                for v in (sel.get("min", 0), sel.get("max", 0), step) if v != "any") and step != "any"
    unit = sel.get("unit_of_measurement")
    if isinstance(unit, str) and unit.isalpha() and unit.lower() not in desc.lower():
        desc = f"{desc.rstrip('.')}, in {unit}."
    return scalar("integer" if whole else "number", desc, minimum=sel.get("min"), maximum=sel.get("max"),
                  default=default)


def _nested(desc: str, parts: dict[str, tuple[str, str]], required: list[str]) -> dict:
    props = {k: {"type": t, "description": d} for k, (t, d) in parts.items()}
    return {"type": "object", "description": desc, "properties": props, "required": required}


def selector_schema(selector: object, desc: str, default=None) -> dict:
    """JSON Schema for one field from its selector ({"number": {...}} etc.)."""
    if not isinstance(selector, dict) or not selector:
        selector = {None: {}}
    kind, sel = next(iter(selector.items()))
    sel = sel if isinstance(sel, dict) else {}
    multiple = bool(sel.get("multiple"))
    if kind == "number":
        schema = _number(sel, desc, default)
    elif kind == "boolean":
        schema = scalar("boolean", desc, default=default)
    elif kind == "constant":
        value = sel.get("value", True)
        schema = scalar("boolean", desc) if isinstance(value, bool) else scalar("string", desc, enum=[value])
    elif kind == "select":
        options = [o.get("value") if isinstance(o, dict) else o for o in sel.get("options") or []]
        enum = None if sel.get("custom_value") else [str(o) for o in options if o is not None]
        schema = scalar("string", desc, enum=enum, default=default)
    elif kind in FORMAT_SELECTORS:
        schema = scalar("string", desc, fmt=FORMAT_SELECTORS[kind], default=default)
    elif kind == "color_temp":
        schema = scalar("integer", desc, minimum=sel.get("min", sel.get("min_mireds")),
                        maximum=sel.get("max", sel.get("max_mireds")), default=default)
    elif kind == "color_rgb":
        item = {"type": "integer", "minimum": 0, "maximum": 255}
        return {"type": "array", "description": desc, "items": item, "minItems": 3, "maxItems": 3}
    elif kind == "duration":
        units = (["days"] if sel.get("enable_day") else []) + ["hours", "minutes", "seconds"]
        return _nested(desc, {u: ("integer", f"Number of {u}.") for u in units}, [])
    elif kind == "location":
        return _nested(desc, {"latitude": ("number", "Latitude in degrees."),
                              "longitude": ("number", "Longitude in degrees."),
                              "radius": ("number", "Radius in meters.")}, ["latitude", "longitude"])
    elif kind in STRING_SELECTORS:
        schema = scalar("string", desc, default=default)
    else:
        raise Skip(f"unsupported selector {kind}")
    return array_of(schema, desc) if multiple else schema


def _fields(fields: object) -> Iterator[tuple[str, dict]]:
    """(name, spec) of every field, sections ("advanced_fields": {"fields": {...}}) flattened."""
    for name, spec in (fields or {}).items():
        spec = spec or {}
        if isinstance(spec, dict) and "fields" in spec and "selector" not in spec:
            yield from _fields(spec["fields"])
        else:
            yield name, spec


def _target_property(target: object) -> dict:
    entity = target.get("entity") if isinstance(target, dict) else None
    filters = entity if isinstance(entity, list) else [entity] if isinstance(entity, dict) else []
    domains = sorted({d for f in filters if isinstance(f, dict)
                      for d in ([f["domain"]] if isinstance(f.get("domain"), str) else f.get("domain") or [])})
    if len(domains) == 1:
        desc = f"Entity ID of the {domains[0].replace('_', ' ')} to act on (starts with \"{domains[0]}.\")."
    else:
        desc = "Entity ID of the entity to act on, such as light.kitchen or switch.heater."
    return {"type": "string", "description": desc}


def service_tool(domain: str, service: str, spec: dict, strings: Strings) -> dict:
    texts = (strings.file(domain).get("services") or {}).get(service) or {}
    description = tool_description(strings.resolve(texts.get("description")), spec.get("description"))
    field_texts = texts.get("fields") or {}
    props, required = {}, []
    if "target" in spec:
        props["entity_id"] = _target_property(spec["target"])
        required.append("entity_id")
    for name, field in _fields(spec.get("fields")):
        is_required = bool(field.get("required"))
        try:
            if not PARAM_NAME.match(name):
                raise Skip("odd parameter name")
            raw = strings.resolve((field_texts.get(name) or {}).get("description")) or field.get("description")
            desc = param_description(raw, name, is_required)
            props[name] = selector_schema(field.get("selector"), desc, field.get("default"))
        except Skip:
            if is_required:
                raise
            continue
        if is_required:
            required.append(name)
    return {"name": f"{domain}.{service}", "description": description, "parameters": object_schema(props, required)}


def wheel_tools(wheel_path: Path, drops: Counter) -> Iterator[dict]:
    """Tools of every component's services.yaml, with source/api/category/group; drops counted by reason."""
    with zipfile.ZipFile(wheel_path) as wheel:
        strings = Strings(wheel)
        paths = sorted(n for n in wheel.namelist() if SERVICES.fullmatch(n))
        for path in paths:
            domain = path.split("/")[2]
            services = yaml.safe_load(wheel.read(path)) or {}
            for service, spec in services.items():
                if service.startswith("."):  # YAML anchors holder, not a service
                    continue
                try:
                    tool = service_tool(domain, service, spec or {}, strings)
                except Skip as e:
                    drops[str(e)] += 1
                    continue
                yield {**tool, "source": "homeassistant", "api": domain, "category": domain, "group": domain}
