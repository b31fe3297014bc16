"""The hand-written tool files: 33 domains, >= 300 tools, all pass the checker; the checker catches faults."""
import copy
import datetime as dt
import json
import random

import pytest

from needle.data.generator import GenConfig
from needle.data.handwritten import TOOLS_DIR, check_files, check_tool, load_handwritten
from needle.data.values import date_surface, load_pools, number_words, time_surface

SPEC_DOMAINS = 33


def test_every_domain_file_passes_the_checker():
    files = sorted(TOOLS_DIR.glob("*.json"))
    assert check_files(files) == []
    domains = load_handwritten()
    assert len(domains) == SPEC_DOMAINS
    assert sum(len(d.tools) for d in domains) >= 300


def test_schemas_use_the_realistic_variety():
    kinds = set()
    for d in load_handwritten():
        for t in d.tools:
            for p in t.props.values():
                kinds.add(p.get("type"))
                kinds |= {k for k in ("enum", "default", "minimum", "maximum", "format", "items") if k in p}
            if t.parameters.get("required"):
                kinds.add("required")
    assert {"string", "integer", "number", "boolean", "array", "object", "enum", "default", "minimum",
            "maximum", "format", "items", "required"} <= kinds


def test_checker_names_the_fault():
    tool = copy.deepcopy(load_handwritten()[0].tools[0])
    raw = {"name": tool.name, "description": tool.description, "parameters": tool.parameters,
           "templates": [t for t, _ in tool.templates], "values": tool.values}
    assert check_tool(raw) == [] or all("fixed" in p for p in check_tool(raw))
    bad = copy.deepcopy(raw)
    bad["templates"] = bad["templates"][:2] + ["do it with {nonexistent}"]
    problems = check_tool(bad)
    assert any("templates: 3 < 8" in p for p in problems) and any("unknown properties" in p for p in problems)
    bad = copy.deepcopy(raw)
    bad["parameters"] = {"type": "object", "properties": {"x": {"type": "strnig"}}}
    assert any("invalid JSON Schema" in p for p in check_tool(bad))


def test_checker_reports_unreadable_files(tmp_path):
    f = tmp_path / "broken.json"
    f.write_text("{not json")
    assert "cannot read" in check_files([f])[0]
    f.write_text(json.dumps({"domain": "x", "tools": [], "confusable_groups": [["ghost_tool"]]}))
    assert "unknown tools ['ghost_tool']" in check_files([f])[0]


def test_value_normalisations():
    assert [number_words(n) for n in (0, 7, 25, 40, 120)] == ["zero", "seven", "twenty five", "forty",
                                                             "one hundred twenty"]
    rng = random.Random(0)
    day = dt.date(2027, 3, 4)
    forms = {date_surface(rng, day) for _ in range(200)}
    assert "March 4, 2027" in forms and "2027-03-04" in forms and not any("/" in f for f in forms)
    assert {time_surface(rng, 12, 0) for _ in range(50)} >= {"noon", "12:00"}
    assert {time_surface(rng, 0, 0) for _ in range(50)} >= {"midnight"}
    pools = load_pools()
    assert len({pools.sample(rng, "person")[0] for _ in range(300)}) > 200
    answer, surface = pools.sample(rng, "time")
    assert len(answer) == 5 and answer[2] == ":"


def test_open_ended_values_come_from_an_open_vocabulary():
    # A small fixed pool (the 34 topical words alone) lets the model recall values instead of copying them.
    rng, pools = random.Random(3), load_pools()
    words = [pools.sample(rng, "word")[0] for _ in range(2000)]
    assert len(set(words)) > 1000 and any(" " in w for w in words) and any(not w.isascii() for w in words)
    assert all(w.strip() == w and w for w in words)
    songs = {pools.sample(rng, "song")[0] for _ in range(500)}
    assert len(songs) > 200
    # The held-out test splits keep the pools they were first made with (GenConfig.open_values=False).
    closed = load_pools(open_values=False)
    assert {closed.sample(rng, "word")[0] for _ in range(500)} <= set(closed.data["words"])
    assert {closed.sample(rng, "song")[0] for _ in range(200)} <= set(closed.data["song"])


def test_coined_words_are_new_and_their_share_is_checked():
    # Coined words are values no pool holds, so a model trained on them must copy rather than recall.
    known = {w.lower() for k, v in load_pools().faker.items() if k.startswith("lexicon_") for w in v}
    coined = load_pools(coined_p=1.0)
    rng = random.Random(5)
    values = [coined.sample(rng, "word")[0] for _ in range(500)]
    words = [w for v in values for w in v.split(" ")]
    assert all(v.strip() == v and v for v in values) and len(set(values)) > 450
    assert sum(w.lower() not in known for w in words) > 0.6 * len(words)
    with pytest.raises(ValueError, match="coined_p"):
        GenConfig(coined_p=1.5)
