"""The offline tool-call generator: call types, offered tools and validated answers, in seeded chunks.

Example k of a run comes from chunk k // CHUNK, whose RNG is seeded by (seed, split, chunk), so any
chunk can be made alone: that is what sharding (`--shard i/n`), resuming and streaming into the
training loop rely on. Every answer is checked against its tool's schema before it is emitted.
"""
from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from needle.data.banks import SPLITS, build_bank
from needle.data.lists import listed_call
from needle.data.noise import add_fillers, dress, garble, render
from needle.data.phrasing import SLOT, Phraser, free_text, generic_ok, load_phrasing
from needle.data.positional import positional_call, positional_names
from needle.data.respell import respell
from needle.data.slots import ToolSpec
from needle.data.values import load_pools

CHUNK = 1000
DEFAULT_MIX = {"single": 0.27, "parallel_same": 0.10, "parallel_diff": 0.16, "none": 0.08, "near_miss": 0.07,
               "no_tools": 0.03, "indirect": 0.06, "disfluent": 0.06, "garbled": 0.09, "long_value": 0.08,
               "parallel_list": 0.10, "positional": 0.05}
# The held-out test splits keep the mix they were first made with: "parallel_list" and "positional" came later
# (write_heldout).
HELDOUT_MIX = {k: w for k, w in DEFAULT_MIX.items() if k not in ("parallel_list", "positional")}
DEFAULT_SOURCES = {"handwritten": 0.5, "invented": 0.2, "catalogue": 0.3}
LONG_CHARS = 80  # a long-value example has a string argument at least this long


BLOCKLIST_FILE = Path(__file__).with_name("pools") / "eval_blocklist.json"


def normalise_query(text: str) -> str:
    """Lower case, whitespace collapsed: how queries are compared with evaluation sets."""
    return " ".join(text.split()).lower()


def query_hash(text: str) -> str:
    return hashlib.sha256(normalise_query(text).encode("utf-8")).hexdigest()[:16]


@lru_cache(maxsize=1)
def eval_blocklist() -> frozenset[str]:
    """Hashes of every evaluation query (BFCL): the generator never emits one of these queries."""
    if not BLOCKLIST_FILE.is_file():
        return frozenset()
    return frozenset(json.loads(BLOCKLIST_FILE.read_text())["query_sha256_16"])


class Regenerate(Exception):
    """This draw cannot make a valid example of its kind (e.g. no second distinct call); draw again."""


@dataclass
class GenConfig:
    split: str = "train"
    seed: int = 0
    mix: dict = field(default_factory=lambda: dict(DEFAULT_MIX))
    sources: dict = field(default_factory=lambda: dict(DEFAULT_SOURCES))
    max_tools: int = 10
    confusable_p: float = 0.5  # how often look-alikes of the needed tools are among the distractors
    max_tool_chars: int = 2800  # distractors stop here (~700 tokens), leaving the 1024-token encoder room
    respell_p: float = 0.0  # share of examples whose tool names (and keys) are respelled (needle/data/respell.py)
    # Open-ended string values from an open vocabulary (needle/data/values.py). NOTE: the held-out test splits
    # keep False (write_heldout), so they stay the sets every published figure was measured on.
    open_values: bool = True
    coined_p: float = 0.0  # share of open-ended values that are coined words, to copy not recall (values.py)

    def __post_init__(self):
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; choose from {', '.join(SPLITS)}")
        for label, weights, known in (("mix", self.mix, DEFAULT_MIX), ("sources", self.sources, DEFAULT_SOURCES)):
            unknown = set(weights) - set(known)
            if unknown or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
                raise ValueError(f"{label}: weights must be >= 0 over {sorted(known)} with a positive total, "
                                 f"got {weights}")
        for key in ("respell_p", "coined_p"):
            if not 0 <= getattr(self, key) <= 1:
                raise ValueError(f"{key} must be in 0..1, got {getattr(self, key)}")
        if not 1 <= self.max_tools <= 64:
            raise ValueError(f"max_tools must be in 1..64, got {self.max_tools}")

    def to_dict(self) -> dict:
        return asdict(self)


def parse_weights(text: str) -> dict[str, float]:
    """'single=0.5,none=0.2' -> {'single': 0.5, 'none': 0.2}."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"bad weight {part!r}: expected name=number") from None
        if not sep:
            raise ValueError(f"bad weight {part!r}: expected name=number")
    return out


class Generator:
    """Makes examples for one GenConfig; build once per process (loads pools and tool banks)."""

    def __init__(self, cfg: GenConfig):
        self.cfg, self.bank = cfg, build_bank(cfg.split)
        self.phraser = Phraser(load_pools(cfg.open_values, cfg.coined_p),
                               "heldout" if cfg.split == "unseen_phrasing" else "train")
        self.d = load_phrasing()
        self.by_name = {t.name: t for t in self.bank.all}
        self.sizes: dict[str, int] = {}
        self.blocked = eval_blocklist()
        self.sources = {k: w for k, w in cfg.sources.items() if w > 0 and getattr(self.bank, k)}
        if not self.sources:
            raise ValueError(f"split {cfg.split!r} has no tools in sources {cfg.sources}")
        self.indirect = [t for t in self.bank.handwritten if self.phraser.indirect(t)]
        self.long = [t for t in self.bank.all if _has_free_text(t, self.phraser.templates(t))]
        self.by_domain: dict[str, list[ToolSpec]] = {}
        for t in self.bank.all:
            self.by_domain.setdefault(t.domain, []).append(t)
        self.numeric = {src: [t for t in getattr(self.bank, src) if positional_names(t, list(t.props))]
                        for src in self.sources}
        needs = {"indirect": self.indirect, "long_value": self.long, "positional": any(self.numeric.values())}
        self.kinds = [k for k, w in cfg.mix.items() if w > 0 and needs.get(k, True)]
        self.weights = [cfg.mix[k] for k in self.kinds]

    def size(self, spec: ToolSpec) -> int:
        """Characters of the tool's JSON as offered (about four per token)."""
        if spec.name not in self.sizes:
            self.sizes[spec.name] = len(json.dumps(spec.public, ensure_ascii=False, separators=(",", ":")))
        return self.sizes[spec.name]

    def pick(self, rng: random.Random) -> ToolSpec:
        src = rng.choices(list(self.sources), weights=list(self.sources.values()))[0]
        return rng.choice(getattr(self.bank, src))

    def example(self, rng: random.Random) -> dict:
        """One validated example; its call type is in meta.type."""
        kind = rng.choices(self.kinds, weights=self.weights)[0]
        for _ in range(50):
            try:
                query, tools, answers, kind_made = getattr(self, f"_{kind}")(rng)
            except Regenerate:
                continue
            example = {"query": query, "tools": tools, "answers": answers, "meta": {"type": kind_made}}
            if self.valid(example):
                if tools and self.cfg.respell_p and rng.random() < self.cfg.respell_p:
                    example = respell(rng, example)
                return example
        raise RuntimeError(f"could not make a valid {kind!r} example in 50 draws (split {self.cfg.split})")

    def valid(self, ex: dict) -> bool:
        offered = {t["name"] for t in ex["tools"]}
        if not ex["query"] or query_hash(ex["query"]) in self.blocked:
            return False
        return all(a["name"] in offered and self.by_name[a["name"]].validator.is_valid(a["arguments"])
                                         for a in ex["answers"])

    # -- offered tools -------------------------------------------------------------------------
    def offer(self, rng: random.Random, needed: list[ToolSpec], banned: set[str], anchor: ToolSpec | None = None):
        k = rng.randint(max(1, len(needed)), self.cfg.max_tools)
        chosen = {t.name: t for t in needed}
        room = [self.cfg.max_tool_chars - sum(self.size(t) for t in needed)]

        def add(t: ToolSpec) -> None:
            if t.name not in banned and t.name not in chosen and len(chosen) < k and self.size(t) <= room[0]:
                chosen[t.name] = t
                room[0] -= self.size(t)

        near = [n for t in needed + ([anchor] if anchor else []) for n in self.bank.related.get(t.name, [])]
        if anchor is not None or (near and rng.random() < self.cfg.confusable_p):
            for n in rng.sample(near, min(len(near), rng.randint(1, 2))):
                add(self.by_name[n])
        domain_of = (anchor or (needed[0] if needed else None))
        if domain_of is not None and rng.random() < 0.4:
            mates = self.by_domain.get(domain_of.domain, [])
            for t in rng.sample(mates, min(len(mates), 2)):
                add(t)
        for _ in range(4 * k):
            if len(chosen) >= k:
                break
            add(self.pick(rng))
        tools = [_shuffled_public(rng, t) for t in chosen.values()]
        rng.shuffle(tools)
        return tools

    # -- call types ----------------------------------------------------------------------------
    def _calls(self, rng, specs: list[ToolSpec], long_text=False, repair=False) -> tuple[list, list]:
        segs, answers = [], []
        for i, spec in enumerate(specs):
            s, args = self.phraser.call(rng, spec, long_text=long_text, repair=repair and i == 0)
            if i:
                segs.append([rng.choice(self.d["joiners"]), False])
            segs += s
            answers.append({"name": spec.name, "arguments": args})
        return segs, answers

    def _finish(self, rng, segs, specs, answers, kind, banned=(), anchor=None):
        tools = self.offer(rng, specs, set(banned), anchor)
        order = {t["name"]: list(t["parameters"].get("properties", {})) for t in tools}
        answers = [{"name": a["name"], "arguments": {k: a["arguments"][k] for k in order[a["name"]]
                                                     if k in a["arguments"]}} for a in answers]
        return render(dress(rng, segs, self.d)), tools, answers, kind

    def _single(self, rng):
        spec = self.pick(rng)
        segs, answers = self._calls(rng, [spec])
        return self._finish(rng, segs, [spec], answers, "single")

    def _parallel_same(self, rng):
        spec = self.pick(rng)
        n = rng.choice([2, 2, 3])
        segs, answers = self._calls(rng, [spec] * n)
        canon = {json.dumps(a["arguments"], sort_keys=True) for a in answers}
        if len(canon) < n or not spec.props:
            raise Regenerate
        return self._finish(rng, segs, [spec], answers, "parallel_same")

    def _parallel_list(self, rng):
        """Several calls of one tool in one phrasing ("the factorial of 5, 10 and 15"), sometimes then another
        tool's call, listed or not."""
        specs = [self.pick(rng)]
        segs, answers = self._listed(rng, specs[0])
        if rng.random() < 0.3:
            other = self.pick(rng)
            if other.name != specs[0].name:
                more, extra = self._listed(rng, other) if rng.random() < 0.5 else self._calls(rng, [other])
                segs += [[rng.choice(self.d["joiners"]), False], *more]
                answers += extra
                specs.append(other)
        return self._finish(rng, segs, specs, answers, "parallel_list")

    def _listed(self, rng, spec: ToolSpec) -> tuple[list, list]:
        segs, answers = listed_call(rng, self.phraser, spec)
        if answers is None:
            raise Regenerate
        return segs, answers

    def _positional(self, rng):
        """Numbers given in the offered schema's order without their names ("the gcd of 36 and 48")."""
        sources = [s for s in self.sources if self.numeric[s]]
        src = rng.choices(sources, weights=[self.sources[s] for s in sources])[0]
        spec = rng.choice(self.numeric[src])
        tools = self.offer(rng, [spec], set())
        order = list(next(t for t in tools if t["name"] == spec.name)["parameters"].get("properties", {}))
        made = positional_call(rng, self.phraser, spec, order)
        if made is None:  # the offered order puts a required number after the third
            raise Regenerate
        segs, args = made
        return render(dress(rng, segs, self.d)), tools, [{"name": spec.name, "arguments": args}], "positional"

    def _parallel_diff(self, rng):
        first = self.pick(rng)
        mates = [t for t in self.by_domain[first.domain] if t.name != first.name]
        specs = [first]
        for _ in range(rng.choice([1, 1, 2])):
            pool = mates if mates and rng.random() < 0.5 else None
            t = rng.choice(pool) if pool else self.pick(rng)
            if t.name not in {s.name for s in specs}:
                specs.append(t)
        if len(specs) < 2:
            raise Regenerate
        segs, answers = self._calls(rng, specs)
        return self._finish(rng, segs, specs, answers, "parallel_diff")

    def _absent_request(self, rng) -> tuple[list, ToolSpec]:
        spec = self.pick(rng)
        return self._calls(rng, [spec])[0], spec

    def _chitchat(self, rng) -> list:
        return [[rng.choice(self.d["none_queries"]), False]]

    def _none(self, rng):
        if rng.random() < 0.5:
            segs, absent = self._absent_request(rng)
            banned = {absent.name, *self.bank.related.get(absent.name, [])}
            return self._finish(rng, segs, [], [], "none", banned)
        return self._finish(rng, self._chitchat(rng), [], [], "none")

    def _near_miss(self, rng):
        domains = [d for d, q in self.bank.none_queries.items() if q and d in self.by_domain]
        if domains and rng.random() < 0.4:
            d = rng.choice(domains)
            anchor = rng.choice(self.by_domain[d])
            segs = [[rng.choice(self.bank.none_queries[d]), False]]
            return self._finish(rng, segs, [], [], "near_miss", (), anchor)
        segs, absent = self._absent_request(rng)
        if not self.bank.related.get(absent.name) and len(self.by_domain[absent.domain]) < 2:
            raise Regenerate
        return self._finish(rng, segs, [], [], "near_miss", {absent.name}, absent)

    def _no_tools(self, rng):
        segs = self._absent_request(rng)[0] if rng.random() < 0.6 else self._chitchat(rng)
        return render(dress(rng, segs, self.d)), [], [], "no_tools"

    def _indirect(self, rng):
        spec = rng.choice(self.indirect)
        text, args = rng.choice(self.phraser.indirect(spec))
        return self._finish(rng, [[text, False]], [spec], [{"name": spec.name, "arguments": dict(args)}], "indirect")

    def _disfluent(self, rng):
        specs = [self.pick(rng)] if rng.random() < 0.75 else [self.pick(rng), self.pick(rng)]
        if len({s.name for s in specs}) < len(specs):
            raise Regenerate
        segs, answers = self._calls(rng, specs, repair=rng.random() < 0.6)
        return self._finish(rng, add_fillers(rng, segs, self.d["fillers"]), specs, answers, "disfluent")

    def _garbled(self, rng):
        specs = [self.pick(rng)] if rng.random() < 0.75 else [self.pick(rng), self.pick(rng)]
        if len({s.name for s in specs}) < len(specs):
            raise Regenerate
        segs, answers = self._calls(rng, specs)
        return self._finish(rng, garble(rng, segs, self.d["asr_swaps"]), specs, answers, "garbled")

    def _long_value(self, rng):
        spec = rng.choice(self.long)
        segs, answers = self._calls(rng, [spec], long_text=True)
        if not any(isinstance(v, str) and len(v) >= LONG_CHARS for v in answers[0]["arguments"].values()):
            raise Regenerate
        return self._finish(rng, segs, [spec], answers, "long_value")


def _has_free_text(spec: ToolSpec, templates: list) -> bool:
    """Whether some phrasing of this tool (in this split) states a prose value."""
    names = {s for text, _ in templates for s in SLOT.findall(text)}
    if generic_ok(spec):
        names |= set(spec.props)
    return any(free_text(n, spec.props[n]) for n in names if n in spec.props)


def _shuffled_public(rng: random.Random, spec: ToolSpec) -> dict:
    """The tool as offered, with its properties in a random order (the model must not rely on order)."""
    params = dict(spec.parameters)
    props = list(params.get("properties", {}).items())
    rng.shuffle(props)
    params["properties"] = dict(props)
    return {"name": spec.name, "description": spec.description, "parameters": params}


def chunk_examples(gen: Generator, chunk: int, count: int = CHUNK) -> list[dict]:
    """The first `count` examples of chunk `chunk`: a pure function of (config, chunk)."""
    rng = random.Random(f"{gen.cfg.seed}/{gen.cfg.split}/{chunk}")
    return [gen.example(rng) for _ in range(count)]


def iter_examples(cfg: GenConfig, start: int = 0, step: int = 1):
    """Endless examples, chunk start, start+step, ... (one stream per worker or rank)."""
    gen = Generator(cfg)
    chunk = start
    while True:
        yield from chunk_examples(gen, chunk)
        chunk += step


def type_counts(examples: list[dict]) -> Counter:
    return Counter(e["meta"]["type"] for e in examples)
