"""Write needle/data/pools/eval_blocklist.json: hashes of every BFCL query, so the generator never emits one.

Only truncated SHA-256 hashes of normalised queries are stored (no BFCL text). Needs the BFCL package:
`pip install --no-deps bfcl-eval==2026.3.23`, then `python scripts/build_eval_blocklist.py`.
"""
from __future__ import annotations

import json

from needle.data.generator import BLOCKLIST_FILE, query_hash
from needle.eval.bfcl import load_bfcl


def main() -> None:
    texts = set()
    for item in load_bfcl(hint=False):
        texts.add(item.query)
        texts.update(part for part in item.query.split("\n\n") if part.strip())  # each message on its own too
    hashes = sorted({query_hash(t) for t in texts})
    record = {"source": "bfcl-eval==2026.3.23, the eleven single-turn categories",
              "hash": "sha256 of the query (and of each of its messages) lower-cased with whitespace collapsed, "
                      "first 16 hex digits",
              "query_sha256_16": hashes}
    BLOCKLIST_FILE.write_text(json.dumps(record, indent=0) + "\n")
    print(f"{BLOCKLIST_FILE}: {len(hashes)} query hashes")


if __name__ == "__main__":
    main()
