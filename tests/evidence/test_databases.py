"""The log and the vault on both databases, through the real migrations (0001_core + 0004).

SQLite and PostgreSQL share one code path; only a real server shows the types, the time zones
and the concurrent-append locking behave the same.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from tutela.config import Settings
from tutela.decision import CheckKind, Decision, Verdict
from tutela.evidence.models import EVIDENCE_TABLES
from tutela.evidence.service import Evidence
from tutela.store.database import Store


@pytest.fixture
def ev(db_url: str, tmp_path: Path) -> Iterator[Evidence]:
    store = Store.open(db_url)
    store.upgrade()
    settings = Settings.load(
        None,
        data_dir=tmp_path / "data",
        database_url=db_url,
        audit_checkpoint_every=10,
        evidence_key=base64.b64encode(os.urandom(32)).decode(),
    )
    yield Evidence.open(settings, store)
    store.close()


def test_the_migration_creates_what_the_models_declare(ev: Evidence) -> None:
    insp = inspect(ev.store.engine)
    for table in EVIDENCE_TABLES:
        migrated = {c["name"]: c["nullable"] for c in insp.get_columns(table.name)}
        declared = {c.name: c.nullable for c in table.columns}
        assert migrated == declared, table.name
        indexed = {tuple(i["column_names"]) for i in insp.get_indexes(table.name)}
        wanted = {tuple(c.name for c in i.columns) for i in table.indexes}
        assert wanted <= indexed, table.name


def test_concurrent_appends_stay_gap_free_and_verifiable(ev: Evidence) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                ev.log.append("admin", {"writer": n, "i": i}, actor=f"w{n}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert ev.log.size() == 60
    assert [e.seq for e in ev.log.entries()] == list(range(60))
    result = ev.log.verify()
    assert result.ok, result.problems
    assert [c.tree_size for c in ev.log.checkpoints()] == [10, 20, 30, 40, 50, 60]


def test_vault_round_trip_and_tamper_detection(ev: Evidence) -> None:
    d = Decision(Verdict.BLOCK, {"sexual_minors": 0.9}, ["r"], [], kind=CheckKind.OUTPUT)
    ev.log.record_decision(d)
    (item,) = ev.vault.preserve(d, image=b"benign test bytes" * 50)
    assert ev.vault.open(item.id, actor="r", reason="check") == b"benign test bytes" * 50
    assert ev.vault.get(item.id).created_at.tzinfo is not None
    with ev.store.engine.begin() as conn:
        entry = conn.execute(text("SELECT entry FROM audit_log WHERE seq = 0")).scalar_one()
        conn.execute(
            text("UPDATE audit_log SET entry = :e WHERE seq = 0"),
            {"e": bytes(entry).replace(b"block", b"allow")},
        )
    assert ev.log.verify().first_bad == 0


def test_concurrent_checks_of_two_workers_log_gap_free_and_seal_blocked_prompts(
    db_url: str, tmp_path: Path
) -> None:
    """Two Guards on one database (two workers: separate engines and pools), each with
    threads whose decisions share group-commit batches: every decision gets one leaf, the
    indices stay gap-free, checkpoints land every interval, and each blocked sexual_minors
    prompt is sealed with the text that was stored with its decision."""
    from tutela import Guard

    key = base64.b64encode(os.urandom(32)).decode()
    guards = []
    for _ in range(2):
        guard = Guard.open(
            data_dir=tmp_path / "data", database_url=db_url, audit_checkpoint_every=4,
            evidence_key=key,
        )  # fmt: skip
        guard.store.upgrade()
        guards.append(guard)
    prompts = ["a watercolour of a lighthouse at dawn", "naked child"]
    made: list[Decision] = []
    errors: list[BaseException] = []

    def checks(guard: Guard, n: int) -> None:
        try:
            for i in range(6):
                made.append(guard.check_prompt(prompts[(n + i) % 2]))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=checks, args=(guards[n % 2], n)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    ev = guards[0].audit.evidence
    entries = list(ev.log.entries())
    assert [e.seq for e in entries] == list(range(len(entries)))
    decided = [e.subject for e in entries if e.kind == "decision"]
    assert sorted(decided) == sorted(d.id for d in made) and len(made) == 24
    blocked = [d for d in made if d.blocked]
    assert len(blocked) == 12 and all("sexual_minors" in d.categories for d in blocked)
    sealed = [e for e in entries if e.kind == "evidence.store"]
    assert len(sealed) == 12 and len(entries) == 36
    for d in blocked:
        (item,) = ev.vault.items(decision_id=d.id)
        assert item.content_kind == "prompt"
        assert ev.vault.open(item.id, actor="t", reason="test") == b"naked child"
    result = ev.log.verify()
    assert result.ok, result.problems
    sizes = [c.tree_size for c in ev.log.checkpoints()]
    assert sizes[:9] == list(range(4, 37, 4))  # opening items above logged 12 accesses
    for guard in guards:
        guard.store.close()
