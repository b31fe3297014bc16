"""The offline generator: valid by construction, deterministic, sharded, resumable, held-out disjoint."""
import json
import re

import pytest

from needle.data.banks import HELDOUT_DOMAINS, SPLITS, build_bank
from needle.data.build import shard_jobs, write_dataset
from needle.data.generator import CHUNK, DEFAULT_MIX, GenConfig, Generator, chunk_examples, parse_weights
from needle.data.phrasing import Phraser, heldout_template, load_phrasing
from needle.data.schema import parse_example, read_jsonl
from needle.data.values import load_pools

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
HHMM = re.compile(r"^\d{2}:\d{2}$")


@pytest.fixture(scope="module")
def gen():
    return Generator(GenConfig())


def _leaves(args):
    for v in args.values():
        if isinstance(v, dict):
            yield from _leaves(v)
        elif isinstance(v, list):
            yield from v
        else:
            yield v


def test_examples_validate_and_answers_use_offered_tools(gen):
    examples = chunk_examples(gen, 0, 600)
    for ex in examples:
        parsed = parse_example(ex, validate=True)  # raises on any schema violation
        offered = {t.name for t in parsed.tools}
        assert all(c.name in offered for c in parsed.answers)
        assert 0 <= len(parsed.tools) <= 10 and ex["meta"]["type"] in DEFAULT_MIX
    assert {ex["meta"]["type"] for ex in examples} == set(DEFAULT_MIX)


def test_string_values_are_grounded_in_the_query(gen):
    """Values appear verbatim, except the documented normalisations (ISO dates, HH:MM times, enums)."""
    fixed = {t.name: {k for _, f in t.templates for k in f} for t in gen.bank.handwritten}
    for ex in chunk_examples(gen, 1, 600):
        if ex["meta"]["type"] == "indirect":
            continue
        schemas = {t["name"]: t["parameters"]["properties"] for t in ex["tools"]}
        for call in ex["answers"]:
            for key, v in call["arguments"].items():
                if key in fixed.get(call["name"], ()):  # a template's fixed value: worded freely
                    continue
                enum = schemas[call["name"]][key].get("enum") or schemas[call["name"]][key].get("items", {}).get("enum")
                for leaf in _leaves({key: v}):
                    if isinstance(leaf, str) and not enum and not ISO_DATE.match(leaf) and not HHMM.match(leaf):
                        assert leaf in ex["query"], (leaf, ex["query"])


def test_deterministic_for_a_seed_and_different_across_seeds(gen):
    assert chunk_examples(gen, 3, 50) == chunk_examples(Generator(GenConfig()), 3, 50)
    assert chunk_examples(gen, 3, 50) != chunk_examples(Generator(GenConfig(seed=1)), 3, 50)


def test_shards_partition_the_run():
    jobs = [shard_jobs(5500, (i, 3)) for i in range(3)]
    chunks = sorted(c for js in jobs for c, _ in js)
    assert chunks == list(range(6)) and sum(n for js in jobs for _, n in js) == 5500


def test_mix_is_configurable_and_recorded(tmp_path):
    cfg = GenConfig(mix={"none": 1.0, "no_tools": 1.0}, seed=4)
    rec = write_dataset(cfg, 300, tmp_path / "none.jsonl", workers=1, progress_bar=False)
    assert set(rec["types"]) <= {"none", "no_tools"} and rec["examples"] == 300
    assert all(not ex.answers for ex in read_jsonl(tmp_path / "none.jsonl"))
    saved = json.loads((tmp_path / "none.jsonl.config.json").read_text())
    assert saved["mix"] == {"none": 1.0, "no_tools": 1.0} and saved["seed"] == 4
    with pytest.raises(ValueError, match="mix"):
        GenConfig(mix={"bogus": 1.0})
    assert parse_weights("single=0.5, none=0.25") == {"single": 0.5, "none": 0.25}
    with pytest.raises(ValueError, match="name=number"):
        parse_weights("single")


def test_resume_after_a_crash_gives_the_same_file(tmp_path):
    cfg = GenConfig(seed=2)
    n = 2 * CHUNK + 300
    whole = tmp_path / "whole.jsonl.gz"
    write_dataset(cfg, n, whole, workers=1, progress_bar=False)
    # A crashed run: one whole chunk recorded, half of the next chunk written after it.
    crashed = tmp_path / "crashed.jsonl.gz"
    write_dataset(cfg, CHUNK, crashed, workers=1, progress_bar=False)
    first = crashed.read_bytes()
    partial = tmp_path / "crashed.jsonl.gz.partial"
    partial.write_bytes(first + b"\x1f\x8b half a gzip member")
    (tmp_path / "crashed.jsonl.gz.progress").write_text(json.dumps({"chunks": 1, "offset": len(first),
                                                                    "types": {}}))
    crashed.unlink()
    write_dataset(cfg, n, crashed, workers=2, progress_bar=False)
    assert [e.query for e in read_jsonl(crashed)] == [e.query for e in read_jsonl(whole)]


def test_heldout_tools_and_domains_never_reach_training():
    train = {t.name for t in build_bank("train").all}
    for split in ("unseen_tools", "unseen_domains"):
        held = {t.name for t in build_bank(split).all}
        assert held and not held & train, split
    assert {t.domain for t in build_bank("unseen_domains").handwritten} <= set(HELDOUT_DOMAINS)
    assert not {t.domain for t in build_bank("train").handwritten} & set(HELDOUT_DOMAINS)
    assert {t.name for t in build_bank("unseen_phrasing").all} == train


def test_generated_splits_are_disjoint_from_training_data():
    train_examples = chunk_examples(Generator(GenConfig()), 0, 1000)
    train_tools = {t["name"] for ex in train_examples for t in ex["tools"]}
    train_queries = {ex["query"] for ex in train_examples}
    for split in SPLITS[1:]:
        held = chunk_examples(Generator(GenConfig(split=split)), 0, 300)
        if split != "unseen_phrasing":
            assert not {c["name"] for ex in held for c in ex["answers"]} & train_tools
        assert not {ex["query"] for ex in held if ex["answers"]} & train_queries


def test_phrasing_split_partitions_templates_and_frames():
    pools = load_pools()
    train, held = Phraser(pools, "train"), Phraser(pools, "heldout")
    assert not set(train.frames) & set(held.frames) and not set(train.mentions) & set(held.mentions)
    for spec in build_bank("train").handwritten:
        assert not {t[0] for t in train.templates(spec)} & {t[0] for t in held.templates(spec)}
        assert all(heldout_template(t[0]) for t in held.templates(spec))
    assert load_phrasing()["none_queries"]


def test_tool_bank_is_large_and_varied():
    train = build_bank("train")
    names = {t.name for t in train.all}
    assert len(names) >= 2000, len(names)
    styles = {"snake": re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$"), "camel": re.compile(r"^[a-z]+[A-Z]\w*$"),
              "kebab": re.compile(r"^[a-z]+(-[a-z0-9]+)+$"), "dotted": re.compile(r"^\w+\.\w+")}
    for style, pattern in styles.items():
        assert any(pattern.match(n) for n in names), style


def test_same_examples_in_separate_processes():
    """Shards made on different machines must agree: nothing may depend on Python's string hashing."""
    import os
    import subprocess
    import sys
    code = ("import hashlib, json; from needle.data.generator import Generator, GenConfig, chunk_examples; "
            "print(hashlib.md5(json.dumps(chunk_examples(Generator(GenConfig(seed=2)), 1, 200)).encode()).hexdigest())")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(outs) == 1
