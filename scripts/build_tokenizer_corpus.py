"""Build a general-English text corpus for training Needle's BPE tokenizer.

Text comes from Debian packages so the corpus is reproducible offline:
GCIDE dictionary definitions (dict-gcide), WordNet glosses (wordnet-base)
and the Python documentation HTML (python3.11-doc, pulled in by python3-doc).
Install them with `apt-get install dict-gcide wordnet-base python3-doc`.

Writes one paragraph per line to `corpus/english.txt` and a JSON note of the
sources (Debian package, version, bytes) to `corpus/english.sources.json`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable, Iterator

GCIDE = Path("/usr/share/dictd/gcide.dict.dz")
WORDNET = Path("/usr/share/wordnet")
PYDOC = Path("/usr/share/doc/python3.11/html")


def package_version(package: str) -> str:
    """Installed Debian version, so the corpus note pins exactly what was read."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package],
        capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


def squash(text: str) -> str:
    """Collapse line wrapping: the sources hard-wrap prose at ~70 columns."""
    return " ".join(text.split())


def gcide_paragraphs(path: Path = GCIDE) -> Iterator[str]:
    """Definition and quotation paragraphs; headword and citation lines are noise."""
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        text = f.read()
    # The licence preamble precedes the first letter's entries.
    start = text.find("Begin file 1 of 26")
    for block in re.split(r"\n\s*\n", text[max(start, 0):]):
        block = re.sub(r"\[(1913 Webster|WordNet[^\]]*|PJC|Century[^\]]*)\]", "", block)
        para = squash(block.replace("{", "").replace("}", ""))
        # Headwords look like `Feel \Feel\, n.` and carry pronunciation markup.
        if len(para) < 40 or "\\" in para or para.startswith(("Syn:", "Note:")):
            continue
        yield re.sub(r"^\d+\.\s+", "", para)


def wordnet_glosses(root: Path = WORDNET) -> Iterator[str]:
    """The free-text gloss after `|` on each synset line (definition + examples)."""
    for pos in ("noun", "verb", "adj", "adv"):
        with open(root / f"data.{pos}", encoding="utf-8", errors="replace") as f:
            for line in f:
                # Lines starting with spaces are the licence header.
                if line.startswith(" ") or " | " not in line:
                    continue
                yield line.split(" | ", 1)[1].strip()


class _TextExtractor(HTMLParser):
    """Collects visible text, skipping scripts, styles and navigation chrome."""

    SKIP = {"script", "style", "nav", "head"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skip_depth += 1
        elif tag in {"p", "div", "li", "pre", "br", "h1", "h2", "h3", "dt", "dd", "tr"}:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP and self._skip_depth:
            self._skip_depth -= 1

    def handle_data(self, data):
        if not self._skip_depth:
            self.parts.append(data)


def pydoc_paragraphs(root: Path = PYDOC) -> Iterator[str]:
    """Prose and code lines from the rendered Python docs."""
    for page in sorted(root.rglob("*.html")):
        if page.name in {"genindex.html", "py-modindex.html", "search.html"} or "genindex" in page.name:
            continue  # indexes are word lists, not text
        parser = _TextExtractor()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        for chunk in "".join(parser.parts).split("\n"):
            chunk = chunk.strip()
            if len(chunk) >= 20:
                yield chunk


def write_capped(out, paragraphs: Iterable[str], max_bytes: int) -> int:
    """Write paragraphs until the byte cap; returns bytes written."""
    written = 0
    for para in paragraphs:
        data = para + "\n"
        size = len(data.encode("utf-8"))
        if written + size > max_bytes:
            break
        out.write(data)
        written += size
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("corpus/english.txt"))
    ap.add_argument("--max-mb-per-source", type=float, default=12.0,
                    help="cap per source so the dictionary does not dominate")
    args = ap.parse_args()

    sources = [
        ("gcide", "dict-gcide", str(GCIDE), gcide_paragraphs),
        ("wordnet", "wordnet-base", str(WORDNET), wordnet_glosses),
        ("python-docs", "python3.11-doc", str(PYDOC), pydoc_paragraphs),
    ]
    cap = int(args.max_mb_per_source * 1e6)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    notes = []
    with open(args.out, "w", encoding="utf-8") as out:
        for name, package, path, reader in sources:
            size = write_capped(out, reader(), cap)
            note = {"name": name, "debian_package": package,
                    "version": package_version(package), "path": path, "bytes": size}
            notes.append(note)
            print(json.dumps(note))
    note_path = args.out.with_suffix(".sources.json")
    note_path.write_text(json.dumps(notes, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) and {note_path}")


if __name__ == "__main__":
    main()
