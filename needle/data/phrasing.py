"""Queries for tool calls: hand-written templates, a generic grammar for any tool, and noise.

A query is built as segments, [text, is_value], so politeness, fillers, typos and speech-recognition
errors touch only the words around argument values, never the values the answer copies. The generic
grammar turns a tool's description into an action ("Returns a list of users" -> "return a list of
users") and mentions each chosen parameter by its name or description ("with max results 5").
Phrasings are split: one fifth of templates and a few frames are kept for the unseen-phrasing set.
"""
from __future__ import annotations

import json
import random
import re
import zlib
from functools import lru_cache
from pathlib import Path

from needle.data.slots import FREE_TEXT, ToolSpec, copyable, pool_for, sample_value, words_of
from needle.data.values import ValuePools

PHRASING_FILE = Path(__file__).with_name("pools") / "phrasing.json"
SLOT = re.compile(r"\{(\w+)\}")
OPTIONAL_P = 0.35  # each optional copyable parameter is mentioned with this probability
_LEAD = re.compile(r"^(this (method|endpoint|operation|api|call|function|tool) |use this to |used to |allows you to )",
                   re.I)


def heldout_template(text: str) -> bool:
    """A fixed fifth of templates belong to the unseen-phrasing split (stable across runs)."""
    return zlib.crc32(text.encode()) % 5 == 0


@lru_cache(maxsize=1)
def load_phrasing() -> dict:
    return json.loads(PHRASING_FILE.read_text(encoding="utf-8"))


def imperative(description: str, name: str) -> str:
    """An action phrase from a tool description, falling back to the tool's name."""
    first = re.split(r"(?<=[.!?])\s|\n", description.strip(), maxsplit=1)[0].rstrip(".!? ")
    first = _LEAD.sub("", first)
    words = first.split()
    if not words or len(words) > 16 or not re.match(r"^[A-Za-z]+$", words[0]):
        return words_of(name)
    verb = words[0].lower()
    if verb.endswith("ies") and len(verb) > 4:
        verb = verb[:-3] + "y"
    elif verb.endswith(("shes", "ches", "sses", "xes", "zes")):
        verb = verb[:-2]
    elif verb.endswith("s") and not verb.endswith(("ss", "us", "is")) and len(verb) > 3:
        verb = verb[:-1]
    rest = " ".join(words[1:])
    return f"{verb} {rest}".strip()


class Phraser:
    """Renders one call as segments; `split` picks train or held-out phrasings (None: all)."""

    def __init__(self, pools: ValuePools, split: str | None = "train"):
        d, self.pools, self.split = load_phrasing(), pools, split
        self.trace: list | None = None  # a list: (name, schema, answer, segment) of each value stated once
        held = split == "heldout"
        self.frames = d["heldout_action_frames"] if held else d["action_frames"]
        self.mentions = d["heldout_mention_forms"] if held else d["mention_forms"]
        if split is None:
            self.frames, self.mentions = self.frames + d["heldout_action_frames"], self.mentions + d["heldout_mention_forms"]
        self.d = d

    def templates(self, spec: ToolSpec) -> list:
        if self.split is None:
            return spec.templates
        return [t for t in spec.templates if heldout_template(t[0]) == (self.split == "heldout")]

    def indirect(self, spec: ToolSpec) -> list:
        """The tool's indirect requests in this split (split like templates)."""
        if self.split is None:
            return spec.indirect
        return [t for t in spec.indirect if heldout_template(t[0]) == (self.split == "heldout")]

    def call(self, rng: random.Random, spec: ToolSpec, long_text: bool = False,
             repair: bool = False) -> tuple[list, dict]:
        """(segments, arguments) for one call of `spec`, arguments in schema order."""
        templates = self.templates(spec)
        if long_text:  # only phrasings that state a prose value can carry a long one
            templates = [t for t in templates if any(free_text(n, spec.props.get(n, {})) for n in SLOT.findall(t[0]))]
        if templates and (rng.random() < 0.85 or not generic_ok(spec)):
            text, fixed = rng.choice(templates)
            segs, args = self._template(rng, spec, text, fixed, long_text, repair)
        else:
            segs, args = self._generic(rng, spec, long_text)
        return segs, {k: args[k] for k in spec.props if k in args}

    def value(self, rng, spec: ToolSpec, name: str, schema: dict, long_text: bool = False,
              repair: bool = False) -> tuple:
        """(answer, segments) for one value of `name`: sometimes quoted, or stated after a wrong one (`repair`)."""
        answer, surface = sample_value(rng, self.pools, name, schema, spec.values.get(name), long_text)
        segs = [[surface, True]]
        if free_text(name, schema) and rng.random() < 0.25:  # quoted message bodies: 'saying "see you at 7"'
            quote = rng.choice(['"', "'", "“"])
            segs = [[quote, False], [surface, True], ["”" if quote == "“" else quote, False]]
        elif repair and not long_text:
            for _ in range(5):
                wrong = sample_value(rng, self.pools, name, schema, spec.values.get(name))
                if wrong[0] != answer:
                    pre, mid = rng.choice(self.d["repairs"]).split("{r}")[0].split("{w}")
                    segs = [[pre, False], [wrong[1], True], [mid, False], [surface, True]]
                    return answer, segs
        if self.trace is not None:
            self.trace.append((name, schema, answer, segs[1 if len(segs) == 3 else 0]))
        return answer, segs

    def _template(self, rng, spec, text, fixed, long_text, repair) -> tuple[list, dict]:
        args, segs, pos = dict(fixed), [], 0
        slots = SLOT.findall(text)
        free = [s for s in slots if free_text(s, spec.props[s])]
        long_slot = rng.choice(free) if long_text and free else None
        repair_slot = rng.choice(slots) if repair and slots else None
        for m in SLOT.finditer(text):
            segs.append([text[pos:m.start()], False])
            name = m.group(1)
            args[name], value_segs = self.value(rng, spec, name, spec.props[name], name == long_slot,
                                                 name == repair_slot)
            if text[m.end():m.end() + 1] not in ("", " ", ",", ".", "?", "!", ";", ":"):
                value_segs = [[str(args[name]), True]]  # "{n}%" or "{n}x": digits, never "eighty%"
            segs += value_segs
            pos = m.end()
        segs.append([text[pos:], False])
        return segs, args

    def _label(self, rng, name: str, schema: dict) -> str:
        desc = schema.get("description", "")
        head = re.split(r"[.,;(]", desc, maxsplit=1)[0].strip().lower()
        if head and len(head.split()) <= 5 and rng.random() < 0.3:
            return re.sub(r"^(the|a|an) ", "", head)
        return words_of(name)

    def mention(self, rng, spec, name, schema, long_text=False) -> tuple[list, object]:
        """(segments, answer) naming one argument beside its value ("with max results 5")."""
        label = self._label(rng, name, schema)
        if schema.get("type") == "boolean":
            value = rng.random() < 0.5
            form = rng.choice(self.d["bool_on" if value else "bool_off"])
            return [[form.format(label=label), False]], value
        if schema.get("type") == "object":
            inner, segs = {}, []
            for key in _chosen(rng, schema):
                s, inner[key] = self.mention(rng, spec, key, schema["properties"][key], False)
                segs += ([[" and ", False]] if segs else []) + [[f"{label} ", False]] + s
            return segs, inner
        answer, vsegs = self.value(rng, spec, name, schema, long_text, False)
        before, after = rng.choice(self.mentions).format(label=label, v="\0").split("\0")
        return [[before, False], *vsegs, [after, False]], answer

    def _generic(self, rng, spec: ToolSpec, long_text: bool) -> tuple[list, dict]:
        names = _chosen(rng, spec.parameters)
        rng.shuffle(names)
        free = [n for n in names if free_text(n, spec.props[n])]
        long_name = rng.choice(free) if long_text and free else None
        action = imperative(spec.description, spec.name) if rng.random() < 0.75 else words_of(spec.name)
        before, after = rng.choice(self.frames).format(a="\0").split("\0")
        segs, args = [[before + action, False]], {}
        for i, name in enumerate(names):
            s, args[name] = self.mention(rng, spec, name, spec.props[name], name == long_name)
            joint = rng.choice(self.d["mention_openers"]) if i == 0 else rng.choice([", ", " and ", ", ", "; "])
            if s and joint.strip() and s[0][0].startswith(joint.strip() + " "):
                joint = ", "  # not "with with"
            segs += [[joint, False], *s]
        segs.append([after, False])
        return segs, args


def free_text(name: str, schema: dict) -> bool:
    """A string parameter that takes prose (a message, note, title), which may be long."""
    return (schema.get("type") == "string" and not {"enum", "format", "pattern"} & schema.keys()
            and pool_for(name, schema) in FREE_TEXT)


def _chosen(rng: random.Random, schema: dict) -> list[str]:
    """Required parameters plus a random share of optional ones, all of them statable in words."""
    props, required = schema.get("properties", {}), set(schema.get("required", []))
    return [k for k, v in props.items() if (k in required or rng.random() < OPTIONAL_P) and statable(k, v)]


def statable(name: str, schema: dict) -> bool:
    if schema.get("type") == "boolean":
        return True
    if schema.get("type") == "object":
        props = schema.get("properties", {})
        return bool(props) and all(statable(k, props[k]) for k in schema.get("required", []) if k in props)
    return copyable(name, schema)


def generic_ok(spec: ToolSpec) -> bool:
    """Whether the generic grammar can state every required argument of this tool."""
    return all(statable(k, spec.props[k]) for k in spec.parameters.get("required", []) if k in spec.props)
