"""Respelled tool names and argument keys: training examples that can only be answered by reading the tools.

A model that has seen `set_lights` with "dim the kitchen" thousands of times can write the name from memory
and never look at the offered tools; then a tool it has never seen (every real deployment) gets a name it
remembers instead. Respelling an example renames its tools (and, half the time, their top-level argument
keys) consistently in the offered tools and in the answers: `set_lights` may become `setLights`,
`lights.set`, `home_set_lights`, `SetLightsV2` or `kvoro.set-lights`. The query and the values do not
change, so the example stays valid, and the only way to write the right name is to copy it from the tools.
"""
from __future__ import annotations

import random
import re

STYLES = ("snake", "camel", "pascal", "kebab", "dotted", "upper_snake")
PREFIXES = ("api", "app", "svc", "home", "my", "tools", "ext", "v2", "plugin", "device", "user", "sys")
SUFFIXES = ("v2", "v3", "tool", "fn", "api", "2", "now", "action")
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
NAME_OK = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def words(name: str) -> list[str]:
    """'setLights', 'set-lights', 'lights.set', 'SET_LIGHTS' -> lower-case words."""
    return [w.lower() for w in _WORD.findall(name)]


def spell(parts: list[str], style: str) -> str:
    """Words joined in a naming convention (also how the invented tools of banks.py are named)."""
    if style == "snake":
        return "_".join(parts)
    if style == "upper_snake":
        return "_".join(parts).upper()
    if style == "kebab":
        return "-".join(parts)
    if style == "dotted":  # last word first, as a namespace: set_lights -> lights.set
        return ".".join(["_".join(parts[1:]), parts[0]]) if len(parts) > 1 else parts[0]
    cap = "".join(p.capitalize() for p in parts)
    return cap if style == "pascal" else cap[0].lower() + cap[1:]


def _nonce(rng: random.Random) -> str:
    """A pronounceable made-up word (a namespace nobody has seen)."""
    return "".join(rng.choice("bcdfghjklmnprstvz") + rng.choice("aeiou") for _ in range(rng.randint(2, 3)))


def respell_name(rng: random.Random, name: str) -> str:
    parts = words(name) or [name.lower()]
    r = rng.random()
    if r < 0.25:
        parts = [rng.choice(PREFIXES), *parts]
    elif r < 0.4:
        parts = [*parts, rng.choice(SUFFIXES)]
    new = spell(parts, rng.choice(STYLES))
    if rng.random() < 0.15:
        new = f"{_nonce(rng)}.{new}"
    return new[:64]


def _respell_keys(rng: random.Random, params: dict) -> dict[str, str] | None:
    """New spellings for a tool's top-level argument keys, or None when they cannot be renamed safely."""
    props = params.get("properties")
    if not isinstance(props, dict) or not props:
        return None
    if set(params) - {"type", "properties", "required", "description", "additionalProperties", "title"}:
        return None  # dependentRequired and the like name keys elsewhere
    style = rng.choice(("snake", "camel", "pascal", "kebab"))
    mapping = {k: spell(words(k) or [k], style) for k in props}
    if len(set(mapping.values())) < len(mapping) or not all(NAME_OK.match(v) for v in mapping.values()):
        return None
    return mapping


def respell(rng: random.Random, example: dict, keys_p: float = 0.5) -> dict:
    """A copy of a generated example with its tools renamed (and their keys, with probability keys_p)."""
    names: dict[str, str] = {}
    for tool in example["tools"]:
        for _ in range(5):
            new = respell_name(rng, tool["name"])
            if NAME_OK.match(new) and new not in names.values():
                names[tool["name"]] = new
                break
        else:
            names[tool["name"]] = tool["name"]
    if len(set(names.values())) < len(names):
        return example
    keys: dict[str, dict[str, str]] = {}
    tools = []
    for tool in example["tools"]:
        params = tool["parameters"]
        mapping = _respell_keys(rng, params) if rng.random() < keys_p else None
        if mapping:
            keys[tool["name"]] = mapping
            params = {**params, "properties": {mapping[k]: v for k, v in params["properties"].items()}}
            if "required" in params:
                params["required"] = [mapping.get(k, k) for k in params["required"]]
        tools.append({**tool, "name": names[tool["name"]], "parameters": params})
    answers = [{"name": names[a["name"]],
                "arguments": {keys.get(a["name"], {}).get(k, k): v for k, v in a["arguments"].items()}}
               for a in example["answers"]]
    return {**example, "tools": tools, "answers": answers, "meta": {**example["meta"], "respelled": True}}
