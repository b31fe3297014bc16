"""Write needle/data/pools/faker_values.json.gz: the generator's Faker value pools (13 locales), drawn once.

Stored rather than drawn at start-up because some Faker providers vary with Python's per-process string
hashing. Rebuild (after changing values.json locales or the pools in needle/data/values.py):
`python scripts/build_value_pools.py`.
"""
from __future__ import annotations

import gzip
import json

from needle.data.values import FAKER_FILE, VALUES_FILE, build_faker_values


def main() -> None:
    pools = build_faker_values(json.loads(VALUES_FILE.read_text(encoding="utf-8")))
    with gzip.GzipFile(FAKER_FILE, "wb", mtime=0) as f:
        f.write(json.dumps(pools, ensure_ascii=False, sort_keys=True).encode("utf-8"))
    print(f"{FAKER_FILE}: {sum(len(v) for v in pools.values())} values in {len(pools)} pools")


if __name__ == "__main__":
    main()
