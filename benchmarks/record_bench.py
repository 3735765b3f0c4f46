"""Per-decision CPU of *recording* a prompt check's decision, apart from its commit.

Why apart: the commit is shared once checks are written in batches (group commit), so what
each decision still costs is the work of building its rows and running its statements: the
decision row and insert, the audit leaf (canonical JSON, leaf hash, insert), for a blocked
``sexual_minors`` prompt the vault's sealing and its custody leaf, and the account state's
load and save. Each figure is CPU time (``time.process_time``: other processes on the core
do not count) per call, the median of ``--rounds`` runs; the transaction figures run
``--batch`` decisions in one transaction, so the commit is spread over the batch.

Run pinned, alternating with a baseline checkout when comparing::

    taskset -c 1 .venv/bin/python benchmarks/record_bench.py [--samples 400 --rounds 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime

from tutela import Guard
from tutela.accounts.state import AccountState
from tutela.decision import Decision, new_decision_id
from tutela.evidence.log import encode_entry
from tutela.store.decisions import _DECISIONS_INSERT, decision_row
from tutela.store.group_commit import connection_of

ALLOWED_PROMPT = "a watercolour of a lighthouse at dawn"
BLOCKED_PROMPT = "naked child"


def cpu_us(fn: Callable[[int], object], samples: int, rounds: int) -> float:
    """Median over ``rounds`` of the CPU µs per call of ``fn(i)``, ``samples`` calls a run."""
    runs = []
    for _ in range(rounds):
        start = time.process_time()
        for i in range(samples):
            fn(i)
        runs.append((time.process_time() - start) / samples * 1e6)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--batch", type=int, default=50, help="decisions per transaction")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    samples, rounds, batch = args.samples, args.rounds, args.batch
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="tutela-record-") as tmp:
        guard = Guard.open(data_dir=tmp)
        for i in range(20):
            guard.check_prompt(ALLOWED_PROMPT if i % 2 else BLOCKED_PROMPT, account=f"a-{i}")
        allowed = guard.check_prompt(ALLOWED_PROMPT, account="acct-1")
        blocked = guard.check_prompt(BLOCKED_PROMPT, account="acct-2")
        assert allowed.allowed and blocked.blocked and blocked.categories.get("sexual_minors")
        days = guard.policy.retention.allowed_prompt_days
        callbacks = tuple(guard._decision_callbacks)
        decisions = guard.store.decisions
        store = guard.store

        def fresh(template: Decision) -> Callable[[], Decision]:
            return lambda: dataclasses.replace(template, id=new_decision_id())

        def in_batches(make: Callable[[], Decision], prompt: str) -> float:
            """CPU per decision of Guard.record's work, ``batch`` decisions a transaction."""
            todo = [make() for _ in range(samples * rounds)]
            it = iter(todo)

            def write(session) -> None:  # type: ignore[no-untyped-def]
                for _ in range(batch):
                    d = next(it)
                    decisions.add(session, decision_row(d, prompt=prompt,
                                                        allowed_prompt_days=days))
                    for cb in callbacks:
                        cb(d, session)

            per = cpu_us(lambda i: store.write(write), samples // batch, rounds)
            return per / batch

        out["record_allowed_own_commit"] = cpu_us(
            lambda i: guard.record(fresh(allowed)(), prompt=ALLOWED_PROMPT), samples, rounds)
        out["record_blocked_own_commit"] = cpu_us(
            lambda i: guard.record(fresh(blocked)(), prompt=BLOCKED_PROMPT), samples, rounds)
        out["record_allowed_in_batch"] = in_batches(fresh(allowed), ALLOWED_PROMPT)
        out["record_blocked_in_batch"] = in_batches(fresh(blocked), BLOCKED_PROMPT)

        # the pieces, on their own
        out["new_decision_id"] = cpu_us(lambda i: new_decision_id(), samples * 10, rounds)
        out["decision_to_dict"] = cpu_us(lambda i: blocked.to_dict(), samples * 10, rounds)
        out["decision_row"] = cpu_us(
            lambda i: decision_row(blocked, prompt=BLOCKED_PROMPT), samples * 10, rounds)
        doc = blocked.to_dict()
        at = blocked.created_at
        out["encode_entry"] = cpu_us(
            lambda i: encode_entry(i, "decision", at, "tutela", blocked.id, doc),
            samples * 10, rounds)
        prepared = decisions._sql(_DECISIONS_INSERT)
        row = decision_row(blocked, prompt=BLOCKED_PROMPT)
        out["decision_insert_params"] = cpu_us(lambda i: prepared._args(row), samples * 10,
                                               rounds)

        # account state: load an existing account, and save it over its version, in one
        # transaction per batch (the statements' own cost, not the connection's)
        repo = guard.accounts.repo
        now = datetime.now(UTC)
        repo.record(AccountState(id="bench-acct"), now)

        def loads(session) -> None:  # type: ignore[no-untyped-def]
            conn = connection_of(session)
            for _ in range(batch):
                repo._state(conn, "bench-acct")

        out["account_state_load"] = cpu_us(
            lambda i: store.write(loads), samples // batch, rounds) / batch

        def saves(session) -> None:  # type: ignore[no-untyped-def]
            conn = connection_of(session)
            for _ in range(batch):
                state = repo._state(conn, "bench-acct")
                repo._save_state(conn, dataclasses.replace(state, strikes={"sexual": 1}), now)

        out["account_state_load_and_save"] = cpu_us(
            lambda i: store.write(saves), samples // batch, rounds) / batch
        assert guard.audit.evidence.log.verify().ok
    if args.json:
        print(json.dumps(out))
        return
    for name, value in out.items():
        print(f"  {name:<30} {value:8.1f} us")


if __name__ == "__main__":
    main()
