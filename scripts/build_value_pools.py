"""Write needle/data/pools/faker_values.json.gz: the generator's Faker value pools (13 locales), drawn once.

Stored rather than drawn at start-up because some Faker providers vary with Python's per-process string
hashing. Rebuild (after changing values.json locales or the pools in needle/data/values.py):
`python scripts/build_value_pools.py`; `--add-only` keeps the pools the file already holds and adds new ones
(how the open-vocabulary pools, `lexicon_*` and `phrase`, were added without redrawing `city`).
"""
from __future__ import annotations

import argparse
import gzip
import json

from needle.data.values import FAKER_FILE, VALUES_FILE, build_faker_values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--add-only", action="store_true", help="keep the pools already stored; add only new ones")
    args = ap.parse_args()
    pools = build_faker_values(json.loads(VALUES_FILE.read_text(encoding="utf-8")))
    if args.add_only and FAKER_FILE.exists():
        with gzip.open(FAKER_FILE, "rt", encoding="utf-8") as f:
            pools.update(json.load(f))
    with gzip.GzipFile(FAKER_FILE, "wb", mtime=0) as f:
        f.write(json.dumps(pools, ensure_ascii=False, sort_keys=True).encode("utf-8"))
    print(f"{FAKER_FILE}: {sum(len(v) for v in pools.values())} values in {len(pools)} pools")


if __name__ == "__main__":
    main()
