"""The store on both databases: migrations, decisions, API keys, and the Guard recording.

Every test runs on SQLite (a temp file) and on a real PostgreSQL server (tests/pg.py), so
the one code path really is one code path.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from tutela import Guard
from tutela.decision import Decision, Signal, Verdict
from tutela.errors import StoreUnavailable
from tutela.store import migrate
from tutela.store.database import Store
from tutela.store.decisions import DecisionRow, prompt_sha256
from tutela.store.keys import ApiKeyRow, Scope

BLOCKED = "naked child"  # a short filter test string the default policy blocks
ALLOWED = "a watercolour of a lighthouse at dawn"


def _decision(account: str, at: datetime, verdict: Verdict = Verdict.ALLOW) -> Decision:
    return Decision(
        verdict=verdict,
        categories={"minor_present": 0.5},
        reasons=["minor indicator: 'kid'"],
        signals=[Signal("prompt_lexicon", "minor", 0.5, {"terms": [{"as_written": "kid"}]})],
        account=account,
        created_at=at,
    )


# --- migrations ------------------------------------------------------------------------------
def test_upgrade_creates_core_tables_and_is_idempotent(db_url: str) -> None:
    store = Store.open(db_url, auto_migrate=False)
    assert not migrate.is_current(store.engine)
    heads = store.upgrade()
    assert set(heads) == migrate.script_heads()
    tables = set(inspect(store.engine).get_table_names())
    assert {"decisions", "api_keys", "alembic_version"} <= tables
    assert store.upgrade() == heads  # a second run changes nothing
    assert migrate.is_current(store.engine)
    store.close()


def test_every_revision_descends_from_core() -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    assert scripts.get_bases() == ["0001_core"]


def test_written_tables_carry_only_the_indexes_queries_use(db_url: str) -> None:
    """Migrations 0007/0008 on a database holding rows: the rows stay, the indexes are the
    models' (each one is written on every check), and the purge of expired prompt text
    finds its rows through the partial index instead of reading the whole table."""
    from alembic import command

    from tutela.evidence.models import AuditEntryRow

    store = Store.open(db_url)
    engine = store.engine
    cfg = migrate.alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004_evidence")  # decisions and audit log as first built
    past = datetime(2026, 3, 1, 12, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(DecisionRow.__table__.insert(), [
            {"id": f"dec_{i}", "kind": "prompt", "verdict": "allow", "categories": {},
             "reasons": [], "signals": [], "account": "a", "account_action": "none",
             "report": False, "language": None, "created_at": past,
             "prompt_sha256": None, "prompt_text": "kept" if i == 0 else None,
             "prompt_expires_at": past if i == 0 else None}
            for i in range(3)
        ])  # fmt: skip
    assert set(store.upgrade()) == migrate.script_heads()

    def indexes(table: str) -> set[str]:
        return {i["name"] for i in inspect(engine).get_indexes(table)}

    assert indexes("decisions") == {i.name for i in DecisionRow.__table__.indexes} == {
        "ix_decisions_account_created_at", "ix_decisions_prompt_expires_at"}
    assert indexes("audit_log") == {i.name for i in AuditEntryRow.__table__.indexes} == {
        "ix_audit_log_subject", "ix_audit_log_created_at"}
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            plan = " ".join(str(r[-1]) for r in conn.execute(text(
                "EXPLAIN QUERY PLAN UPDATE decisions SET prompt_text = NULL, "
                "prompt_expires_at = NULL WHERE prompt_expires_at IS NOT NULL "
                "AND prompt_expires_at <= '2026-04-01'")))
        assert "ix_decisions_prompt_expires_at" in plan, plan
    assert store.decisions.purge_expired_prompts(past + timedelta(days=1)) == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM decisions")).scalar_one() == 3
    store.close()


def test_concurrent_upgrades_do_not_collide(db_url: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        s = Store.open(db_url, auto_migrate=False)
        try:
            s.upgrade()
        except BaseException as exc:
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_sqlite_default_migrates_itself_on_first_use(tmp_path: Path) -> None:
    db = tmp_path / "fresh" / "tutela.db"
    store = Store.open(f"sqlite:///{db}")
    assert not db.exists()  # opening costs nothing
    assert store.decisions.get("dec_missing") is None
    assert db.exists()
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    store.close()


# --- decisions -------------------------------------------------------------------------------
def test_decision_round_trip(store: Store) -> None:
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    d = _decision("acct-1", at, Verdict.REVIEW)
    store.decisions.record(d, prompt="a kid")
    got = store.decisions.get(d.id)
    assert got is not None
    assert got.decision.to_dict() == d.to_dict()
    assert got.prompt_sha256 == prompt_sha256("a kid")
    assert got.prompt_text == "a kid"  # not an allow: kept as evidence
    assert store.decisions.get("dec_nope") is None


def test_allowed_prompt_text_is_not_kept_by_default(store: Store) -> None:
    d = _decision("acct-1", datetime.now(UTC))
    store.decisions.record(d, prompt="a kid")
    got = store.decisions.get(d.id)
    assert got is not None
    assert got.prompt_text is None
    assert got.prompt_sha256 == prompt_sha256("a kid")


def test_retention_keeps_allowed_text_until_it_expires(store: Store) -> None:
    old = _decision("acct-1", datetime.now(UTC) - timedelta(days=10))
    new = _decision("acct-1", datetime.now(UTC))
    store.decisions.record(old, prompt="old text", allowed_prompt_days=7)
    store.decisions.record(new, prompt="new text", allowed_prompt_days=7)
    blocked = _decision("acct-1", datetime.now(UTC) - timedelta(days=30), Verdict.BLOCK)
    store.decisions.record(blocked, prompt="kept text", allowed_prompt_days=7)
    assert store.decisions.purge_expired_prompts() == 1
    assert store.decisions.get(old.id).prompt_text is None  # type: ignore[union-attr]
    assert store.decisions.get(new.id).prompt_text == "new text"  # type: ignore[union-attr]
    assert store.decisions.get(blocked.id).prompt_text == "kept text"  # type: ignore[union-attr]


def test_for_account_since_before_limit_and_order(store: Store) -> None:
    base = datetime(2026, 3, 1, tzinfo=UTC)
    made = [_decision("acct-a", base + timedelta(minutes=i)) for i in range(6)]
    made.append(_decision("acct-b", base + timedelta(minutes=3)))
    for d in made:
        store.decisions.record(d)
    got = store.decisions.for_account("acct-a", since=base + timedelta(minutes=2))
    assert [g.decision.id for g in got] == [d.id for d in reversed(made[2:6])]
    # a since given in another zone means the same instant
    cet = timezone(timedelta(hours=1))
    same = store.decisions.for_account(
        "acct-a", since=(base + timedelta(minutes=2)).astimezone(cet)
    )
    assert [g.decision.id for g in same] == [g.decision.id for g in got]
    limited = store.decisions.for_account(
        "acct-a", before=base + timedelta(minutes=5), limit=2
    )
    assert [g.decision.id for g in limited] == [made[4].id, made[3].id]
    assert store.decisions.for_account("acct-none") == []


def test_for_account_filters_verdicts(store: Store) -> None:
    now = datetime.now(UTC)
    a = _decision("acct-v", now, Verdict.ALLOW)
    b = _decision("acct-v", now + timedelta(seconds=1), Verdict.BLOCK)
    store.decisions.record(a)
    store.decisions.record(b)
    got = store.decisions.for_account("acct-v", verdicts=[Verdict.BLOCK])
    assert [g.decision.id for g in got] == [b.id]


def test_duplicate_decision_id_is_refused(store: Store) -> None:
    from sqlalchemy.exc import IntegrityError

    d = _decision("acct-1", datetime.now(UTC))
    store.decisions.record(d)
    with pytest.raises(IntegrityError):
        store.decisions.record(d)


# --- API keys --------------------------------------------------------------------------------
def test_keys_are_stored_hashed_and_verify(store: Store) -> None:
    record, secret = store.api_keys.create(Scope.CHECK, "image-service")
    assert secret.startswith("tut_") and len(secret) > 40
    assert store.api_keys.verify(secret) == record
    assert store.api_keys.verify(secret + "x") is None
    assert store.api_keys.verify("not-a-key") is None
    with store.sessions() as session:
        row = session.scalars(select(ApiKeyRow)).one()
        assert secret not in (row.key_hash, row.hint, row.name, row.id)


def test_revoke_and_list(store: Store) -> None:
    a, secret_a = store.api_keys.create("admin", "a")
    b, _ = store.api_keys.create("review", "b")
    assert store.api_keys.count() == 2
    assert store.api_keys.revoke(a.id) is True
    assert store.api_keys.revoke(a.id) is False
    assert store.api_keys.revoke("key_unknown") is False
    assert store.api_keys.verify(secret_a) is None
    listed = {k.id: k for k in store.api_keys.list()}
    assert not listed[a.id].active and listed[b.id].active
    assert [k.id for k in store.api_keys.list(include_revoked=False)] == [b.id]
    assert store.api_keys.count() == 2


def test_scope_ladder() -> None:
    assert Scope.ADMIN.allows(Scope.REVIEW) and Scope.ADMIN.allows(Scope.CHECK)
    assert Scope.REVIEW.allows(Scope.CHECK) and not Scope.REVIEW.allows(Scope.ADMIN)
    assert not Scope.CHECK.allows(Scope.REVIEW)


# --- the Guard records every decision --------------------------------------------------------
def _guard(tmp_path: Path, db_url: str) -> Guard:
    guard = Guard.open(data_dir=tmp_path / "g", database_url=db_url)
    guard.store.upgrade()
    return guard


def test_check_prompt_records_before_returning(tmp_path: Path, db_url: str) -> None:
    guard = _guard(tmp_path, db_url)
    blocked = guard.check_prompt(BLOCKED, account="acct-1")
    allowed = guard.check_prompt(ALLOWED, account="acct-1")
    assert blocked.verdict is Verdict.BLOCK and allowed.verdict is Verdict.ALLOW
    got_b = guard.store.decisions.get(blocked.id)
    got_a = guard.store.decisions.get(allowed.id)
    assert got_b is not None and got_b.prompt_text == BLOCKED
    assert got_a is not None and got_a.prompt_text is None
    assert got_a.prompt_sha256 == prompt_sha256(ALLOWED)
    history = guard.store.decisions.for_account("acct-1")
    assert {h.decision.id for h in history} == {blocked.id, allowed.id}


def test_on_decision_runs_in_the_recording_transaction(tmp_path: Path, db_url: str) -> None:
    guard = _guard(tmp_path, db_url)
    seen: list[tuple[str, int]] = []

    @guard.on_decision
    def count_in_transaction(decision: Decision, session: Session) -> None:
        # the decision is already inserted in this transaction
        n = session.scalar(select(DecisionRow.id).where(DecisionRow.id == decision.id))
        seen.append((decision.id, 1 if n else 0))

    d = guard.check_prompt(ALLOWED, account="acct-2")
    assert seen == [(d.id, 1)]


def test_failing_callback_rolls_the_decision_back(tmp_path: Path, db_url: str) -> None:
    guard = _guard(tmp_path, db_url)
    ids: list[str] = []

    def broken(decision: Decision, session: Session) -> None:
        ids.append(decision.id)
        raise RuntimeError("evidence log unavailable")

    guard.on_decision(broken)
    with pytest.raises(RuntimeError):
        guard.check_prompt(ALLOWED, account="acct-3")
    assert guard.store.decisions.get(ids[0]) is None


def test_retention_policy_keeps_allowed_text(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("retention:\n  allowed_prompt_days: 3\n", encoding="utf-8")
    guard = Guard.open(data_dir=tmp_path / "g", policy_file=policy)
    d = guard.check_prompt(ALLOWED, account="acct-r")
    got = guard.store.decisions.get(d.id)
    assert got is not None and got.prompt_text == ALLOWED


def test_unreachable_postgres_fails_closed(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port on which nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://nobody@127.0.0.1:{port}/none?connect_timeout=2"
    guard = Guard.open(data_dir=tmp_path / "g", database_url=url)
    with pytest.raises(StoreUnavailable):
        guard.check_prompt(ALLOWED, account="acct-x")
    with pytest.raises(StoreUnavailable):
        guard.store.ping()


# --- group commit ----------------------------------------------------------------------------
def test_concurrent_writes_share_one_commit_and_a_bad_one_fails_alone(store: Store) -> None:
    import time

    from sqlalchemy import event

    from tutela.store.decisions import decision_row

    commits: list[int] = []
    event.listen(store.engine, "commit", lambda conn: commits.append(1))
    made = [_decision("acct-g", datetime.now(UTC)) for _ in range(12)]
    outcome: dict[int, str] = {}

    def writer(i: int) -> None:
        def work(session: Session) -> None:
            store.decisions.add(session, decision_row(made[i]))
            if i == 5:
                raise RuntimeError("this write is bad")

        try:
            store.write(work)
            outcome[i] = "ok"
        except RuntimeError:
            outcome[i] = "failed"

    lock = store._writer._commit_lock  # hold the door so every write queues up first
    lock.acquire()
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(store._writer._queue) < 12 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(store._writer._queue) == 12
    lock.release()
    for t in threads:
        t.join(timeout=30)
    assert outcome == {i: ("failed" if i == 5 else "ok") for i in range(12)}
    stored = store.decisions.exists([d.id for d in made])
    assert stored == {d.id for i, d in enumerate(made) if i != 5}
    # the batch failed once, then each write ran alone: 11 commits, not one per try
    assert len(commits) == 11


def test_a_batch_commits_once(store: Store) -> None:
    import time

    from sqlalchemy import event

    from tutela.store.decisions import decision_row

    commits: list[int] = []
    event.listen(store.engine, "commit", lambda conn: commits.append(1))
    made = [_decision("acct-h", datetime.now(UTC)) for _ in range(8)]
    lock = store._writer._commit_lock
    lock.acquire()
    threads = [
        threading.Thread(
            target=store.write,
            args=(lambda s, d=d: store.decisions.add(s, decision_row(d)),),
        )
        for d in made
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while len(store._writer._queue) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    lock.release()
    for t in threads:
        t.join(timeout=30)
    assert store.decisions.exists([d.id for d in made]) == {d.id for d in made}
    assert len(commits) == 1


def test_an_in_memory_sqlite_url_still_opens() -> None:
    """LIFO order is asked of queue pools only: SQLite's in-memory pools have none."""
    from tutela.store.db import make_engine

    engine = make_engine("sqlite://")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1


def test_consecutive_batches_write_through_one_connection(store: Store) -> None:
    """With two connections idle in the pool, batch after batch gets the one returned last:
    on SQLite a connection's page cache is dropped whenever another connection writes."""
    from tutela.store.decisions import decision_row

    first, second = store.engine.connect(), store.engine.connect()  # two in the pool
    first.close()
    second.close()
    used = []
    for _ in range(4):
        with store.batch() as batch:
            used.append(batch.connection.connection.dbapi_connection)
            store.write(lambda s: store.decisions.add(
                s, decision_row(_decision("acct-l", datetime.now(UTC)))))
    assert len({id(c) for c in used}) == 1


# --- the write transaction -------------------------------------------------------------------
def test_a_write_commits_orm_and_prepared_rows_together_or_neither(store: Store) -> None:
    """A write's session joins a Connection-owned transaction: the prepared insert and ORM
    objects left pending in the session commit together, and roll back together."""
    from tutela.store.decisions import decision_row
    from tutela.store.group_commit import connection_of

    now = datetime.now(UTC)
    fast, orm = _decision("acct-w", now), _decision("acct-w", now)
    seen: list[bool] = []

    def work(session: Session) -> None:
        seen.append(connection_of(session) is session.connection())
        store.decisions.add(session, decision_row(fast))
        session.add(DecisionRow(**decision_row(orm)))  # not flushed here: the commit does it

    store.write(work)
    assert seen == [True]
    assert store.decisions.exists([fast.id, orm.id]) == {fast.id, orm.id}

    lost_fast, lost_orm = _decision("acct-w", now), _decision("acct-w", now)

    def failing(session: Session) -> None:
        store.decisions.add(session, decision_row(lost_fast))
        session.add(DecisionRow(**decision_row(lost_orm)))
        session.flush()
        raise RuntimeError("after both rows were written")

    with pytest.raises(RuntimeError):
        store.write(failing)
    assert store.decisions.exists([lost_fast.id, lost_orm.id]) == set()


def test_kept_prompt_is_what_the_insert_stored(store: Store) -> None:
    """The evidence vault takes the prompt from here: in the recording transaction it is the
    text the insert just wrote, under the retention rule, and otherwise read from the row."""
    from tutela.store.decisions import decision_row

    now = datetime.now(UTC)
    earlier = _decision("acct-k", now, Verdict.BLOCK)
    store.decisions.record(earlier, prompt="kept earlier")
    blocked, allowed = _decision("acct-k", now, Verdict.BLOCK), _decision("acct-k", now)
    got: dict[str, str | None] = {}

    def work(session: Session) -> None:
        store.decisions.add(session, decision_row(blocked, prompt="kept now"))
        store.decisions.add(session, decision_row(allowed, prompt="not kept"))
        for d in (blocked, allowed, earlier):
            got[d.id] = store.decisions.kept_prompt(session, d.id)
        got["missing"] = store.decisions.kept_prompt(session, "dec_nope")

    store.write(work)
    assert got == {blocked.id: "kept now", allowed.id: None, earlier.id: "kept earlier",
                   "missing": None}  # fmt: skip
    stored = {d.id: store.decisions.get(d.id) for d in (blocked, allowed)}
    assert {k: v.prompt_text for k, v in stored.items() if v} == {
        blocked.id: "kept now",
        allowed.id: None,
    }


def test_a_dropped_connection_in_a_write_is_store_unavailable(store: Store) -> None:
    """Fail closed: a driver error on the prepared path that means "the database is gone"
    (here the connection is closed under the write) still reaches the caller as
    StoreUnavailable, the API's 503."""
    from tutela.store.decisions import decision_row
    from tutela.store.group_commit import connection_of

    d = _decision("acct-u", datetime.now(UTC))

    def work(session: Session) -> None:
        connection_of(session).connection.driver_connection.close()  # type: ignore[union-attr]
        store.decisions.add(session, decision_row(d))

    with pytest.raises(StoreUnavailable):
        store.write(work)
    assert store.decisions.exists([d.id]) == set()
