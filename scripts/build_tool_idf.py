"""Word document frequencies over the training tools' texts: the background IDF that the tool prior's BM25 uses
(needle/infer/toolprior.py), so that a word's weight does not depend on how few tools a request offers.

Only the training bank counts (needle/data/banks.py): no held-out tool's words. Writes
needle/infer/tool_idf.json.gz (about 40 KB):
    python scripts/build_tool_idf.py
"""
from __future__ import annotations

import gzip
import json
from collections import Counter

from tqdm import tqdm

from needle.data.banks import build_bank
from needle.data.schema import Tool
from needle.infer.shortlist import tool_words
from needle.infer.toolprior import IDF_FILE


def main() -> None:
    tools = build_bank("train").all
    df: Counter = Counter()
    for spec in tqdm(tools, desc="tools", unit="tool"):
        df.update(set(tool_words(Tool(spec.name, spec.description, spec.parameters))))
    tmp = IDF_FILE.with_suffix(".tmp")
    data = json.dumps({"documents": len(tools), "df": dict(sorted(df.items()))}, separators=(",", ":"))
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:  # same input, same bytes
        f.write(data.encode("utf-8"))
    tmp.replace(IDF_FILE)
    print(f"{IDF_FILE}: {len(tools)} tools, {len(df)} words")


if __name__ == "__main__":
    main()
