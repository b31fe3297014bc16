"""Deterministic, offline generator of tool-calling examples from a JSON pool.

Each example pairs a query with 0-5 offered tools (OpenAI function format) and the
expected calls. Argument values appear verbatim in the query so a small model can
learn to copy them; every answer is validated against its tool's JSON Schema here.
"""
from __future__ import annotations

import copy
import json
import os
import random
import re
from pathlib import Path

import jsonschema

from needle.data.generator import eval_blocklist, query_hash
from needle.data.schema import write_jsonl  # noqa: F401  (re-exported for callers of this module)

DEFAULT_POOL = Path(__file__).with_name("pools") / "minimal.json"
MIX = (("single", 0.60), ("multi", 0.20), ("none", 0.15), ("no_tools", 0.05))
MAX_TOOLS = 5
SAME_TOOL_MULTI = 0.25  # share of two-call examples that repeat one tool with new args
CONFUSABLE_DISTRACTOR = 0.4  # how often a look-alike tool is offered, to teach the distinction
TOOL_NONE_SHARE = 0.5  # "none" queries: this share are real tool requests for an absent tool
_SLOT = re.compile(r"\{(\w+)\}")
_PUBLIC_KEYS = ("name", "description", "parameters")


def load_pool(path: str | os.PathLike | None = None) -> dict:
    """Read a pool JSON file (default: pools/minimal.json) and check it is usable."""
    with open(DEFAULT_POOL if path is None else path, encoding="utf-8") as f:
        pool = json.load(f)
    _check_pool(pool)
    return pool


def _template(t) -> tuple[str, dict]:
    # Booleans cannot be copied from text, so templates carry them as fixed values.
    return (t, {}) if isinstance(t, str) else (t["text"], dict(t.get("fixed", {})))


def _check_pool(pool: dict) -> None:
    names = [t["name"] for t in pool["tools"]]
    if len(set(names)) != len(names):
        raise ValueError("duplicate tool names in pool")
    for group in pool.get("confusable_groups", []):
        if not set(group) <= set(names):
            raise ValueError(f"confusable group names unknown tools: {group}")
    for tool in pool["tools"]:
        params = tool["parameters"]
        jsonschema.Draft202012Validator.check_schema(params)
        props = params["properties"]
        for t in tool["templates"]:
            text, fixed = _template(t)
            slots = _SLOT.findall(text)
            missing = set(params.get("required", [])) - set(slots) - set(fixed)
            if missing or not set(slots) <= set(props):
                raise ValueError(f"{tool['name']}: bad template {text!r}")
            for s in slots:
                if props[s].get("type") == "boolean":
                    raise ValueError(f"{tool['name']}: boolean slot {s!r} is not copyable")
                if s not in tool.get("values", {}) and "enum" not in props[s]:
                    raise ValueError(f"{tool['name']}: no values for slot {s!r}")


def _prepare(pool: dict) -> dict:
    tools = {t["name"]: t for t in pool["tools"]}
    related = {n: set() for n in tools}
    for group in pool.get("confusable_groups", []):
        for n in group:
            related[n] |= set(group) - {n}
    return {
        "pool": pool,
        "names": [t["name"] for t in pool["tools"]],  # list, not set: keeps order seed-stable
        "tools": tools,
        "public": {n: {k: t[k] for k in _PUBLIC_KEYS} for n, t in tools.items()},
        "validators": {n: jsonschema.Draft202012Validator(t["parameters"]) for n, t in tools.items()},
        "related": {n: sorted(r) for n, r in related.items()},
        "joiners": pool.get("joiners", [" and ", " then "]),
    }


def _sample_value(rng: random.Random, spec, schema: dict):
    if spec is None:
        spec = schema["enum"]
    if isinstance(spec, list):
        return rng.choice(spec)
    step = spec.get("step", 1)
    k = rng.randint(0, int(round((spec["max"] - spec["min"]) / step)))
    value = round(spec["min"] + k * step, 6)
    # Whole numbers become ints so the query digits ("21") match the JSON answer exactly.
    return int(value) if float(value).is_integer() else value


def _fill(rng: random.Random, template, values: dict, props: dict, cap: bool,
          last: bool = True) -> tuple[str, dict]:
    text, args = _template(template)

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in args:
            args[name] = _sample_value(rng, values.get(name), props.get(name, {}))
        return str(args[name])

    clause = _SLOT.sub(sub, text)
    if cap and text[:1].islower():  # never alter a copied value's first letter
        clause = clause[0].upper() + clause[1:]
    if not last and text[-1:] in "?.!":  # drop the template's own mark mid-sentence, never a value's
        clause = clause[:-1]
    return clause, args


def _render_call(rng: random.Random, prep: dict, name: str, cap: bool,
                 last: bool = True) -> tuple[str, dict]:
    tool = prep["tools"][name]
    props = tool["parameters"]["properties"]
    clause, args = _fill(rng, rng.choice(tool["templates"]), tool.get("values", {}), props, cap, last)
    ordered = {k: args[k] for k in props if k in args}  # schema order gives one canonical target
    return clause, {"name": name, "arguments": ordered}


def _render_none(rng: random.Random, prep: dict, cap: bool = True) -> str:
    spec = prep["pool"]["none_queries"]
    return _fill(rng, rng.choice(spec["templates"]), spec.get("values", {}), {}, cap)[0]


def _offer(rng: random.Random, prep: dict, needed: list[str], banned: set[str]) -> list[dict]:
    k = rng.randint(max(1, len(needed)), MAX_TOOLS)
    chosen = list(dict.fromkeys(needed))
    pool = [n for n in prep["names"] if n not in chosen and n not in banned]
    lookalikes = [r for n in chosen for r in prep["related"][n] if r in pool]
    if lookalikes and len(chosen) < k and rng.random() < CONFUSABLE_DISTRACTOR:
        pick = rng.choice(lookalikes)
        chosen.append(pick)
        pool.remove(pick)
    chosen += rng.sample(pool, min(len(pool), k - len(chosen)))
    rng.shuffle(chosen)
    return [copy.deepcopy(prep["public"][n]) for n in chosen]


def _join(rng: random.Random, prep: dict, first: str, second: str) -> str:
    return first + rng.choice(prep["joiners"]) + second


def _multi(rng: random.Random, prep: dict) -> tuple[str, list[dict], list[str]]:
    if rng.random() < SAME_TOOL_MULTI:
        name = rng.choice(prep["names"])
        q1, a1 = _render_call(rng, prep, name, cap=True, last=False)
        for _ in range(50):  # redraw so the two calls are genuinely different
            q2, a2 = _render_call(rng, prep, name, cap=False)
            if a2 != a1:
                break
        else:
            raise RuntimeError(f"could not draw two distinct calls for {name}")
        needed = [name]
    else:
        needed = rng.sample(prep["names"], 2)
        q1, a1 = _render_call(rng, prep, needed[0], cap=True, last=False)
        q2, a2 = _render_call(rng, prep, needed[1], cap=False)
    return _join(rng, prep, q1, q2), [a1, a2], needed


def _make_example(rng: random.Random, prep: dict, mix=MIX) -> dict:
    """A validated example whose query is not an evaluation (BFCL) query."""
    while True:
        example = _draw_example(rng, prep, mix)
        if query_hash(example["query"]) not in eval_blocklist():
            return example


def _draw_example(rng: random.Random, prep: dict, mix=MIX) -> dict:
    kind = rng.choices([k for k, _ in mix], weights=[w for _, w in mix])[0]
    if kind == "single":
        name = rng.choice(prep["names"])
        query, answer = _render_call(rng, prep, name, cap=True)
        tools, answers = _offer(rng, prep, [name], set()), [answer]
    elif kind == "multi":
        query, answers, needed = _multi(rng, prep)
        tools = _offer(rng, prep, needed, set())
    else:
        banned: set[str] = set()
        if rng.random() < TOOL_NONE_SHARE:
            # A real request whose tool (and its look-alikes) is absent: the model must abstain.
            name = rng.choice(prep["names"])
            query = _render_call(rng, prep, name, cap=True)[0]
            banned = {name, *prep["related"][name]}
        else:
            query = _render_none(rng, prep)
        tools = _offer(rng, prep, [], banned) if kind == "none" else []
        answers = []
    example = {"query": query, "tools": tools, "answers": answers}
    _validate(example, prep)
    return example


def _validate(example: dict, prep: dict) -> None:
    offered = {t["name"] for t in example["tools"]}
    for ans in example["answers"]:
        if ans["name"] not in offered:
            raise ValueError(f"answer uses tool not offered: {ans['name']}")
        errors = list(prep["validators"][ans["name"]].iter_errors(ans["arguments"]))
        if errors:
            raise ValueError(f"{ans['name']} arguments invalid: {errors[0].message}")


def _check_mix(mix) -> None:
    kinds = {k for k, _ in MIX}
    if not mix or any(k not in kinds or w < 0 for k, w in mix) or sum(w for _, w in mix) <= 0:
        raise ValueError(f"mix must be (kind, weight) pairs over {sorted(kinds)} with positive total, got {mix!r}")


def generate_examples(n: int, seed: int, pool: dict | None = None, mix=MIX) -> list[dict]:
    """Return n examples; identical for identical (n, seed, pool, mix)."""
    _check_mix(mix)
    prep = _prepare(load_pool() if pool is None else pool)
    rng = random.Random(seed)
    return [_make_example(rng, prep, mix) for _ in range(n)]


def split_heldout(n_train: int, n_heldout: int, seed: int,
                  pool: dict | None = None, train_mix=MIX) -> tuple[list[dict], list[dict]]:
    """Train and held-out examples over the same tools; no held-out query occurs in train.

    Held-out queries are also unique among themselves so accuracy is not inflated by repeats.
    Held-out examples always follow the default MIX; `train_mix` may over-sample hard kinds.
    """
    _check_mix(train_mix)
    prep = _prepare(load_pool() if pool is None else pool)
    # String seeds are hashed deterministically (sha512), unlike hash() of str.
    held_rng, train_rng = random.Random(f"{seed}/heldout"), random.Random(f"{seed}/train")
    budget = 50 * (n_train + n_heldout) + 1000  # bounds the loops if the pool is too small
    heldout: list[dict] = []
    seen: set[str] = set()
    while len(heldout) < n_heldout and budget > 0:
        ex, budget = _make_example(held_rng, prep), budget - 1
        if ex["query"] not in seen:
            seen.add(ex["query"])
            heldout.append(ex)
    train: list[dict] = []
    while len(train) < n_train and budget > 0:
        ex, budget = _make_example(train_rng, prep, train_mix), budget - 1
        if ex["query"] not in seen:
            train.append(ex)
    if len(heldout) < n_heldout or len(train) < n_train:
        raise RuntimeError("pool too small for the requested disjoint split")
    return train, heldout
