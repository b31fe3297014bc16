"""The generator's tool banks, and which tools each split may use.

Three sources: hand-written tools (pools/tools/, with templates), invented tools (pools/invent.json:
verb x object x naming convention, with paraphrased descriptions) and tools converted from API
catalogues (pools/catalogue/*.jsonl.gz). Held-out tools are chosen by a stable hash so the
unseen-tool and unseen-domain splits never share a tool with training.
"""
from __future__ import annotations

import gzip
import json
import random
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from needle.data.handwritten import Domain, load_handwritten
from needle.data.phrasing import generic_ok
from needle.data.respell import spell
from needle.data.slots import ToolSpec

POOLS = Path(__file__).with_name("pools")
HELDOUT_DOMAINS = ("passwords", "parental_controls", "wearable")  # never in training: unseen-domain split
SPLITS = ("train", "unseen_tools", "unseen_phrasing", "unseen_domains")


def _held(key: str, every: int) -> bool:
    return zlib.crc32(key.encode()) % every == 0


def _invent_one(obj: dict, verb: str, style: str, data: dict) -> ToolSpec:
    noun = obj["noun"]
    rng = random.Random(f"{noun}/{verb}/{style}")
    nouns = noun[:-1] + "ies" if noun.endswith("y") else noun + ("es" if noun.endswith("s") else "s")
    desc = rng.choice(data["verbs"][verb]).format(noun=noun, nouns=nouns)
    names = list(obj["params"])
    rng.shuffle(names)
    keep = names[:rng.randint(1, min(5, len(names)))]
    props, keyed = {}, {}
    for p in keep:
        key = spell(p.split("_"), "camel" if style in ("camel", "pascal") else "snake")
        keyed[p] = key
        props[key] = {**data["params"][p]["schema"], "description": rng.choice(data["params"][p]["desc"])}
    required = [keyed[p] for p in keep[:rng.randint(0 if verb in ("list", "search", "export") else 1, len(keep))]]
    params = {"type": "object", "properties": props, "required": required}
    name = spell([verb, *noun.split()], style)
    return ToolSpec(name, desc, params, domain=obj["domain"], source="invented")


def invented_tools(path: Path = POOLS / "invent.json") -> list[tuple[ToolSpec, str]]:
    """Every invented tool with its object noun (the unit held out for the unseen-tool split)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [(_invent_one(obj, verb, style, data), obj["noun"])
            for obj in data["objects"] for verb in obj["verbs"] for style in data["conventions"]]


def catalogue_tools(directory: Path = POOLS / "catalogue") -> list[tuple[ToolSpec, str]]:
    """Converted API tools with their API name (held out API by API), usable by the generic grammar."""
    out = []
    for path in sorted(directory.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                t = json.loads(line)
                spec = ToolSpec(t["name"], t["description"], t["parameters"], domain=t.get("category", t["api"]),
                                source=t.get("source", path.name.split(".")[0]))
                if generic_ok(spec):
                    out.append((spec, f"{spec.source}/{t['api']}"))
    return out


@dataclass
class Bank:
    """Tools one split may use, by source, plus look-alike groups and near-miss queries."""
    handwritten: list[ToolSpec] = field(default_factory=list)
    invented: list[ToolSpec] = field(default_factory=list)
    catalogue: list[ToolSpec] = field(default_factory=list)
    related: dict[str, list[str]] = field(default_factory=dict)  # name -> look-alikes (any source)
    none_queries: dict[str, list[str]] = field(default_factory=dict)  # domain -> near-miss queries

    @property
    def all(self) -> list[ToolSpec]:
        return self.handwritten + self.invented + self.catalogue


def _related(domains: list[Domain], invented: list[tuple[ToolSpec, str]]) -> dict[str, list[str]]:
    rel: dict[str, set[str]] = {}
    for d in domains:
        for group in d.confusable_groups:
            for n in group:
                rel.setdefault(n, set()).update(set(group) - {n})
    by_noun: dict[str, list[str]] = {}
    for spec, noun in invented:  # other verbs on the same object look alike: create vs update reservation
        by_noun.setdefault(noun, []).append(spec.name)
    for spec, noun in invented:
        rel.setdefault(spec.name, set()).update(n for n in by_noun[noun] if n != spec.name)
    return {k: sorted(v) for k, v in rel.items()}


@lru_cache(maxsize=1)
def _sources() -> tuple:
    return load_handwritten(), invented_tools(), catalogue_tools()


@lru_cache(maxsize=None)
def build_bank(split: str) -> Bank:
    """The tools a split may use. train and unseen_phrasing share tools; the others are disjoint from
    them by name too (two APIs may both have a `listUsers`)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
    domains, invented, catalogue = _sources()
    seen = split in ("train", "unseen_phrasing")

    def keep_hand(spec: ToolSpec) -> bool:
        if spec.domain in HELDOUT_DOMAINS:
            return split == "unseen_domains"
        return split != "unseen_domains" and _held(spec.name, 10) != seen

    bank = Bank(related=_related(domains, invented))
    bank.handwritten = [t for d in domains for t in d.tools if keep_hand(t)]
    if split != "unseen_domains":
        bank.invented = [t for t, noun in invented if _held(noun, 6) != seen]
        bank.catalogue = [t for t, api in catalogue if _held(api, 10) != seen]
    taken = set() if seen else {t.name for t in build_bank("train").all}
    for src in ("handwritten", "invented", "catalogue"):  # one tool per name: the first source wins
        kept = []
        for t in getattr(bank, src):
            if t.name not in taken:
                taken.add(t.name)
                kept.append(t)
        setattr(bank, src, kept)
    names = {t.name for t in bank.all}
    bank.related = {k: [n for n in v if n in names] for k, v in bank.related.items() if k in names}
    bank.none_queries = {d.name: d.none_queries for d in domains
                         if (d.name in HELDOUT_DOMAINS) == (split == "unseen_domains")}
    return bank
