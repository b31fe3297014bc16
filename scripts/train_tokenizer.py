"""Train Needle's byte-level BPE tokenizer on English, API tool schemas and tool calls.

Three kinds of training text, mixed by character share (defaults 35/35/30):

  english    lines of corpus/english.txt (scripts/build_tokenizer_corpus.py)
  tooltext   --tooltext JSONL lines {"tools": [...]}; each line becomes the compact
             JSON of its tools (scripts/api_tool_text.py: Google API schemas)
  toolcalls  --toolcalls JSONL lines {"query", "tools", "answers"}; each becomes
             three texts: the query and the compact JSON of tools and answers,
             exactly as the model sees them

Every kind is subsampled (seeded, whole lines/examples) so the mix matches the
shares; the kind with the least text relative to its share sets the total.
Kinds not given are dropped and the remaining shares renormalised.

Rebuild the shipped tokenizer (see also scripts/README.md):

    python scripts/build_tokenizer_corpus.py            # corpus/english.txt
    pip install google-api-python-client                # discovery documents
    python scripts/api_tool_text.py --out corpus/api_tools.jsonl
    python scripts/train_tokenizer.py --english corpus/english.txt \\
        --tooltext corpus/api_tools.jsonl \\
        --toolcalls corpus/toolcalls.jsonl --generate 50000 --generate-seed 7 \\
        --out needle/assets/tokenizer.json

`--generate N` first writes generate_examples(N, seed=--generate-seed) from
needle/data/procedural.py to the (single) --toolcalls path; it is the same as

    python -c "from needle.data.procedural import generate_examples, write_jsonl; \\
        write_jsonl(generate_examples(50000, seed=7), 'corpus/toolcalls.jsonl')"
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from needle.tokenizer import train_tokenizer  # noqa: E402


def compact(obj) -> str:
    # Must match how the data pipeline serialises tools/answers for the model.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def read_jsonl(paths: list[Path]):
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def toolcall_units(paths: list[Path]) -> list[list[str]]:
    """One unit per example: [query, compact tools, compact answers]."""
    return [[ex["query"], compact(ex["tools"]), compact(ex["answers"])] for ex in read_jsonl(paths)]


def tooltext_units(paths: list[Path]) -> list[list[str]]:
    """One unit per line: [compact tools]."""
    return [[compact(ex["tools"])] for ex in read_jsonl(paths)]


def english_units(path: Path) -> list[list[str]]:
    return [[ln] for ln in path.read_text(encoding="utf-8").splitlines() if ln]


def sample_units(units: list[list[str]], max_chars: float, seed: int) -> list[str]:
    """Whole units up to a character budget, in a seeded shuffled order.

    Inputs are concatenated source by source (English: dictionary first), so a
    prefix would be unrepresentative; the shuffle keeps every source, reproducibly.
    """
    order = list(range(len(units)))
    random.Random(seed).shuffle(order)
    texts, total = [], 0
    for i in order:
        n = sum(map(len, units[i]))
        if total + n > max_chars:
            break
        texts += units[i]
        total += n
    return texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--english", type=Path, default=Path("corpus/english.txt"))
    ap.add_argument("--tooltext", type=Path, nargs="*", default=[],
                    help='JSONL files whose lines are {"tools": [...]}')
    ap.add_argument("--toolcalls", type=Path, nargs="+", required=True)
    ap.add_argument("--generate", type=int, default=0, metavar="N",
                    help="first write N generated examples to the single --toolcalls path")
    ap.add_argument("--generate-seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path("needle/assets/tokenizer.json"))
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--english-share", type=float, default=0.35)
    ap.add_argument("--tooltext-share", type=float, default=0.35)
    ap.add_argument("--toolcall-share", type=float, default=0.30)
    ap.add_argument("--seed", type=int, default=0, help="subsampling seed")
    args = ap.parse_args()

    sources: list[str] = []
    if args.generate:
        if len(args.toolcalls) != 1:
            ap.error("--generate needs exactly one --toolcalls path")
        from needle.data.procedural import DEFAULT_POOL, generate_examples, write_jsonl

        args.toolcalls[0].parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(generate_examples(args.generate, seed=args.generate_seed), args.toolcalls[0])
        sources.append(f"toolcalls generated: needle.data.procedural.generate_examples("
                       f"{args.generate}, seed={args.generate_seed}), pool {DEFAULT_POOL.name} "
                       f"sha256:{sha256(DEFAULT_POOL)}")

    kinds = {  # name -> (share, units)
        "english": (args.english_share, english_units(args.english)),
        "tooltext": (args.tooltext_share, tooltext_units(args.tooltext)),
        "toolcalls": (args.toolcall_share, toolcall_units(args.toolcalls)),
    }
    kinds = {k: (s, u) for k, (s, u) in kinds.items() if s > 0 and u}
    avail = {k: sum(len(t) for unit in u for t in unit) for k, (_, u) in kinds.items()}
    total_share = sum(s for s, _ in kinds.values())
    # The kind with least text per unit of share limits the total size.
    scale = min(avail[k] / (s / total_share) for k, (s, _) in kinds.items())
    texts: list[str] = []
    for i, (k, (s, units)) in enumerate(kinds.items()):
        part = sample_units(units, scale * s / total_share, seed=args.seed + i)
        chars = sum(map(len, part))
        print(f"{k}: {len(part)} texts, {chars / 1e6:.2f}M of {avail[k] / 1e6:.2f}M chars")
        sources.append(f"{k}: {chars} chars ({s / total_share:.0%} share)")
        texts += part

    sources.append(f"english:{args.english} sha256:{sha256(args.english)}")
    notes = args.english.with_suffix(".sources.json")
    if notes.exists():  # provenance from build_tokenizer_corpus.py
        sources += [f"{n['name']}: debian {n['debian_package']} {n['version']}"
                    for n in json.loads(notes.read_text(encoding="utf-8"))]
    for p in args.tooltext:
        sources.append(f"tooltext:{p} sha256:{sha256(p)}")
        notes = p.with_suffix(".sources.json")
        if notes.exists():  # provenance from api_tool_text.py
            n = json.loads(notes.read_text(encoding="utf-8"))
            sources.append(f"{n['name']}: pypi {n['package']} {n['version']} ({n['apis']} APIs, "
                           f"max_methods={n['max_methods']}, repeats={n['repeats']}, seed={n['seed']})")
    sources += [f"toolcalls:{p} sha256:{sha256(p)}" for p in args.toolcalls]

    start = time.perf_counter()
    tok = train_tokenizer(texts, vocab_size=args.vocab_size, sources=sources)
    print(f"trained vocab {tok.vocab_size} in {time.perf_counter() - start:.1f}s")
    tok.save(args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
