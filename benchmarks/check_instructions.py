"""Instructions per prompt check, counted by callgrind: a yardstick host load cannot move.

On a shared 2-core host the HTTP benchmark's figures swing by a third from one spell to the
next (``docs/service.md``), and CPU time in-process by ±10%: too much to tell a 3% change
from noise. The number of instructions a check executes does not depend on what the
neighbours do. This runs ``Guard.check_prompts`` on SQLite (or, with ``--postgres``, on a
throw-away PostgreSQL from tests/pg.py), in batches of 16 as the service runs them (the HTTP
benchmark's five prompts over 200 accounts; ``--batch 7`` is what two workers on PostgreSQL
see at 16 connections), twice under callgrind with different numbers of batches, and divides
the difference by the checks in between: start-up, imports and warm-up cancel out.

    .venv/bin/python benchmarks/check_instructions.py [--postgres] [--batch 16] [--batches 20 60]

Needs valgrind (Debian package ``valgrind``); takes a minute or two (both runs at once).
Compare trees by running it from each (``PYTHONPATH=<copy of src>`` for the older one).
Instructions are not time (a cache miss costs more than an add), and callgrind counts only
the process's own instructions, not the kernel's (a page read saved by a warm SQLite cache
does not show here), but a cut that removes Python work shows at once, and a change that
adds some cannot hide. Repeated runs agree within ~2% (the account ladder reads the clock,
which runs slowly under valgrind; decision ids are random).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def run_checks(batches: int, batch: int) -> None:
    """The measured work: ``batches`` batches of ``batch`` checks on a fresh store (SQLite,
    or the database of ``TUTELA_DATABASE_URL``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from http_bench import check_batch

    from tutela import Guard

    with tempfile.TemporaryDirectory(prefix="tutela-instr-") as tmp:
        guard = Guard.open(data_dir=tmp)
        guard.store.upgrade()
        for i in range(batches):
            guard.check_prompts(check_batch(i, batch))
        guard.store.close()


def count(batches: int, batch: int, tmp: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    out = tmp / f"callgrind-{batches}.out"
    return subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
         __file__, "--run", str(batches), str(batch)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        # the same set and dict orders each run
        env={**os.environ, "PYTHONHASHSEED": "0", **env},
    )  # fmt: skip


def instructions(stderr: str) -> int:
    found = re.search(r"I\s+refs:\s+([\d,]+)", stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs=2, default=(20, 60), metavar=("A", "B"),
                        help="batches in the two runs (B > A)")
    parser.add_argument("--batch", type=int, default=16, help="checks per batch")
    parser.add_argument("--postgres", action="store_true",
                        help="on a throw-away PostgreSQL (a database per run) instead of SQLite")
    parser.add_argument("--run", type=int, nargs=2, help=argparse.SUPPRESS)  # internal: one run
    args = parser.parse_args()
    if args.run is not None:
        run_checks(*args.run)
        return
    low, high = args.batches
    if high <= low or low < 1:
        parser.error("--batches A B needs 1 <= A < B")
    if args.batch < 1:
        parser.error("--batch needs at least one check")
    if shutil.which("valgrind") is None:
        sys.exit("valgrind not found: sudo apt-get install valgrind")
    with tempfile.TemporaryDirectory(prefix="tutela-callgrind-") as tmp, _databases(
        args.postgres
    ) as database:
        runs = [count(n, args.batch, Path(tmp), database(n)) for n in (low, high)]
        counts = []
        for proc in runs:
            _, err = proc.communicate()
            if proc.returncode:
                sys.exit(f"valgrind run failed ({proc.returncode}):\n{err[-2000:]}")
            counts.append(instructions(err))
    checks = (high - low) * args.batch
    per_check = (counts[1] - counts[0]) / checks
    where = "PostgreSQL" if args.postgres else "SQLite"
    print(f"{per_check:,.0f} instructions per prompt check ({where}, batches of {args.batch}; "
          f"{checks} checks between runs of {low} and {high} batches)")


@contextmanager
def _databases(postgres: bool) -> Iterator[Callable[[int], dict[str, str]]]:
    """The environment of each run: nothing (SQLite in the run's own directory), or a
    database of its own on one throw-away PostgreSQL server, stopped afterwards."""
    if not postgres:
        yield lambda n: {}
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from pg import TempPostgres, find_pg_bin

    bin_dir = find_pg_bin()
    if bin_dir is None:
        sys.exit("PostgreSQL binaries not found (Debian package 'postgresql')")
    server = TempPostgres(bin_dir, fsync=True).start()
    try:
        yield lambda n: {"TUTELA_DATABASE_URL": server.create_database(f"run{n}")}
    finally:
        server.stop()


if __name__ == "__main__":
    main()
