"""Tools as the generator sees them (ToolSpec), and drawing an argument value for any parameter.

A hand-written tool says how to fill each slot (`values`); for invented and converted tools the value
is inferred from the parameter's schema and name (an `email` string gets an e-mail, `city` a city,
an integer its range). Every draw is (answer, surface): the surface is what the query says.
"""
from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass, field

from jsonschema import Draft202012Validator

from needle.data.values import ValuePools, number_surface

# Parameter-name hints -> value pool, checked in order (first match wins).
NAME_HINTS = (
    ("email", "email"), ("mail", "email"), ("phone", "phone"), ("mobile", "phone"), ("url", "url"),
    ("link", "url"), ("website", "url"), ("city", "city"), ("town", "city"), ("country", "country"),
    ("address", "street_address"), ("street", "street_address"), ("company", "company"),
    ("organi", "company"), ("first_name", "first_name"), ("firstname", "first_name"),
    ("last_name", "last_name"), ("surname", "last_name"), ("username", "username"), ("handle", "username"),
    ("recipient", "contact"), ("contact", "contact"), ("person", "person"), ("author", "person"),
    ("owner", "person"), ("name", "person"), ("title", "title"), ("subject", "title"),
    ("message", "message"), ("body", "message"), ("text", "message"), ("content", "message"),
    ("note", "message"), ("comment", "message"), ("caption", "message"), ("description", "message"),
    ("reason", "message"), ("query", "word"), ("search", "word"), ("keyword", "word"), ("term", "word"),
    ("tag", "word"), ("label", "word"), ("category", "word"), ("topic", "word"), ("language", "language"),
    ("lang", "language"), ("locale", "language"), ("color", "color"), ("colour", "color"),
    ("currency", "currency"), ("song", "song"), ("track", "song"), ("artist", "artist"), ("album", "album"),
    ("podcast", "podcast"), ("app", "app"), ("product", "product"), ("item", "product"),
    ("file", "filename"), ("path", "filename"), ("location", "city"), ("place", "city"),
    ("destination", "city"), ("origin", "city"), ("date", "date"), ("day", "date"), ("time", "time"),
)
FORMAT_POOLS = {"email": "email", "uri": "url", "url": "url", "date": "date", "idn-email": "email"}
FREE_TEXT = ("message", "long_text", "title")
_ID_CHARS = string.ascii_uppercase + string.digits


@dataclass
class ToolSpec:
    """One tool plus what the generator knows about phrasing it."""
    name: str
    description: str
    parameters: dict
    domain: str
    source: str  # handwritten | invented | openapi | google | homeassistant
    templates: list = field(default_factory=list)  # [(text, fixed args)]
    indirect: list = field(default_factory=list)  # [(text, full arguments)]
    values: dict = field(default_factory=dict)  # slot -> value spec
    _validator: Draft202012Validator | None = None

    @property
    def public(self) -> dict:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    @property
    def validator(self) -> Draft202012Validator:
        if self._validator is None:
            self._validator = Draft202012Validator(self.parameters)
        return self._validator

    @property
    def props(self) -> dict:
        return self.parameters.get("properties", {})


def words_of(name: str) -> str:
    """'maxResults' / 'max_results' / 'max-results' -> 'max results'."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return re.sub(r"[_\-.\s]+", " ", name).strip().lower()


def pool_for(name: str, schema: dict) -> str | None:
    """The value pool that suits a string parameter, from its format, pattern or name."""
    if schema.get("format") in FORMAT_POOLS:
        return FORMAT_POOLS[schema["format"]]
    if schema.get("format") == "time" or "[0-5][0-9]$" in schema.get("pattern", ""):
        return "time"
    if "pattern" in schema or schema.get("format"):
        return None  # an arbitrary pattern or format: the caller must not guess
    low, desc = name.lower(), schema.get("description", "").lower()
    if low == "id" or low.endswith(("_id", "id", "ids", "_key", "token", "code")):
        return None
    if low in ("name", "parent", "resource") and any(w in desc for w in ("resource", "identifier", "format", "/")):
        return None  # an API resource name ("projects/p1/topics/t1"), not a person
    return next((pool for hint, pool in NAME_HINTS if hint in low), "word")


def _fits(value, schema: dict) -> bool:
    return Draft202012Validator(schema).is_valid(value)


def sample_number(rng: random.Random, schema: dict, spec: dict | None = None, words_p: float = 0.2):
    is_int = schema.get("type") == "integer"
    lo = (spec or {}).get("min", schema.get("minimum", schema.get("exclusiveMinimum", 0 if is_int else 0.5)))
    hi = (spec or {}).get("max", schema.get("maximum", schema.get("exclusiveMaximum", lo + (60 if is_int else 100))))
    if "exclusiveMinimum" in schema and lo <= schema["exclusiveMinimum"]:
        lo = schema["exclusiveMinimum"] + (1 if is_int else 0.5)
    if "exclusiveMaximum" in schema and hi >= schema["exclusiveMaximum"]:
        hi = schema["exclusiveMaximum"] - (1 if is_int else 0.5)
    hi = max(hi, lo)
    step = (spec or {}).get("step", 1 if is_int or rng.random() < 0.6 else rng.choice([0.5, 0.1, 0.01]))
    k = rng.randint(0, int(round((hi - lo) / step)))
    value = round(lo + k * step, 6)
    value = int(value) if float(value).is_integer() else value  # "22", not "22.0"
    return value, number_surface(rng, value, words_p)


def sample_id(rng: random.Random, name: str) -> tuple[str, str]:
    style = rng.randrange(4)
    if style == 0:
        v = "".join(rng.choices(_ID_CHARS, k=rng.randint(5, 8)))
    elif style == 1:
        v = str(rng.randint(1000, 999999))
    elif style == 2:
        v = f"{words_of(name).split()[0][:3]}_{rng.randint(10, 9999)}"
    else:
        v = f"{rng.choice(_ID_CHARS)}{rng.choice(_ID_CHARS)}-{rng.randint(100, 99999)}"
    return v, v


def sample_value(rng: random.Random, pools: ValuePools, name: str, schema: dict, spec=None,
                 long_text: bool = False) -> tuple[object, str]:
    """Draw (answer, surface) for one parameter. `spec` comes from a hand-written tool's `values`."""
    if long_text:  # the caller checked that this is a prose string parameter
        return pools.sample(rng, "long_text")
    if isinstance(spec, list):
        v = rng.choice(spec)
        return v, (number_surface(rng, v) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v))
    if isinstance(spec, str) and spec.startswith("@"):
        return pools.sample(rng, spec[1:])
    if isinstance(spec, dict) and "items" in spec:
        return sample_array(rng, pools, name, schema, spec)
    if "enum" in schema:
        v = rng.choice(schema["enum"])
        return v, str(v)
    kind = schema.get("type")
    if kind in ("integer", "number"):
        idlike = pool_for(name, {}) is None  # "order id 53", never "order id fifty three"
        return sample_number(rng, schema, spec if isinstance(spec, dict) else None, 0.0 if idlike else 0.2)
    if kind == "array":
        return sample_array(rng, pools, name, schema, spec or {})
    if kind == "string" or kind is None:
        pool = pool_for(name, schema)
        return sample_id(rng, name) if pool is None else pools.sample(rng, pool)
    raise ValueError(f"cannot draw a value for {name!r} of type {kind!r}")


def sample_array(rng: random.Random, pools: ValuePools, name: str, schema: dict, spec: dict):
    item_schema = schema.get("items", {"type": "string"})
    lo = max(1, spec.get("min_items", schema.get("minItems", 1)))
    hi = min(spec.get("max_items", schema.get("maxItems", 3)), 4)
    answers, surfaces = [], []
    for _ in range(50):
        if len(answers) >= rng.randint(lo, max(lo, hi)):
            break
        a, s = sample_value(rng, pools, name.rstrip("s"), item_schema, spec.get("items"))
        if a not in answers:
            answers.append(a)
            surfaces.append(s)
    if len(surfaces) == 1:
        return answers, surfaces[0]
    return answers, ", ".join(surfaces[:-1]) + rng.choice([" and ", ", and ", " & ", ", "]) + surfaces[-1]


def copyable(name: str, schema: dict) -> bool:
    """Whether a value for this parameter can be stated in a query and copied back exactly."""
    kind = schema.get("type")
    if "enum" in schema:
        return all(isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v).strip()
                   for v in schema["enum"])
    if kind in ("integer", "number", "string"):
        return kind != "string" or "pattern" not in schema or pool_for(name, schema) == "time"
    if kind == "array":
        return copyable(name, schema.get("items", {})) and schema.get("items", {}).get("type") != "array"
    return False
