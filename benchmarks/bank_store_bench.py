"""End to end through the store: import N random hashes into a SQLite bank, load the matcher,
match a real (benign) image's 8 dihedral hashes against it.

What ``bank_bench.py`` leaves out: the database. Figures: import time (one transaction),
the matcher's first load from the database, and match latency including the lookup of the
hit's entry. Run::

    taskset -c 0 .venv/bin/python benchmarks/bank_store_bench.py 1000000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tutela.hashes.matcher import BankMatcher
from tutela.hashes.repository import BankRepository, NewEntry
from tutela.image.pdq import hash_image
from tutela.store.database import Store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("size", type=int, nargs="?", default=1_000_000)
    ap.add_argument("--matches", type=int, default=50)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from imagesamples import sample  # benign scikit-image sample

    n = args.size
    store = Store.open(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    store.upgrade()
    repo = BankRepository(store)
    repo.create_bank("big")
    rng = np.random.default_rng(1)
    hexes = [r.tobytes().hex() for r in rng.integers(0, 256, (n, 32), dtype=np.uint8)]
    known = hash_image(sample("astronaut"))
    hexes[n // 2] = known.hash  # one known image hidden in the bank

    start = time.perf_counter()
    result = repo.add_entries("big", [NewEntry(h) for h in hexes], skip_duplicates=False)
    print(f"import {len(result.added):,} hashes: {time.perf_counter() - start:.1f} s")
    matcher = BankMatcher(repo)
    start = time.perf_counter()
    matcher.load()
    print(f"matcher load: {time.perf_counter() - start:.1f} s ({matcher.size:,} entries)")
    times = []
    for _ in range(args.matches):
        start = time.perf_counter()
        match = matcher.match(known)
        times.append(time.perf_counter() - start)
    times.sort()
    print(
        f"match 8 dihedral hashes: p50 {times[len(times) // 2] * 1000:.2f} ms, "
        f"found: {match.blocked}"
    )
    store.close()


if __name__ == "__main__":
    main()
