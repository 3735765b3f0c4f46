"""The accounts tables: the migration builds exactly what the models declare, on SQLite and
PostgreSQL, and times come back timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData

from tutela.accounts.fingerprint import fingerprint
from tutela.accounts.repository import AccountRepository, ActionChange
from tutela.accounts.state import AccountState, Attempt
from tutela.accounts.tables import TABLES
from tutela.decision import AccountAction
from tutela.store.database import Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'data' / 'tutela.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    s = Store.open(url)
    s.upgrade()
    return s


def test_migration_matches_the_models(store: Store) -> None:
    ours = MetaData(naming_convention=TABLES[0].metadata.naming_convention)
    for t in TABLES:
        t.to_metadata(ours)
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diffs = [
            d
            for d in compare_metadata(ctx, ours)
            if not (d[0] == "remove_table" or (d[0] == "remove_index" and d[1].table.name
                    not in ours.tables))
        ]  # fmt: skip
    assert diffs == []


def test_state_and_attempts_round_trip_with_aware_times(store: Store) -> None:
    repo = AccountRepository(store.engine, store.ensure_schema)
    assert repo.load("a").exists is False
    fp = fingerprint("a lighthouse at dawn")
    state = AccountState(
        id="a", risk=0.4, risk_at=T0, strikes={"sexual_minors": 1}, last_block_at=T0,
        action=AccountAction.WARN, action_since=T0, action_until=T0 + timedelta(hours=24),
    )  # fmt: skip
    attempt = Attempt(T0, "block", "block", "sexual_minors", "en", 2, fp, probe=True)
    repo.record(state, T0, attempt, change=ActionChange(AccountAction.WARN, None, "r", "ladder"))
    got = repo.load("a")
    assert got.exists and got.strikes == {"sexual_minors": 1}
    assert got.action_until == T0 + timedelta(hours=24) and got.action_until.tzinfo is not None
    recent = repo.recent_attempts("a", T0 - timedelta(minutes=1))
    assert len(recent) == 1 and recent[0].probe and recent[0].at == T0
    assert recent[0].fingerprint is not None
    assert (recent[0].fingerprint.hashvalues == fp.hashvalues).all()
    assert repo.block_times("a", T0 - timedelta(hours=1)) == {"sexual_minors": [T0]}
    assert repo.actions("a")[0]["action"] == "warn"
    key = repo.add_blocked_prompt("output", None, "sexual_minors", fp, T0)
    rows = repo.blocked_prompts(0)
    assert [r.id for r in rows] == [key] and rows[0].fingerprint.digest == fp.digest
    assert repo.blocked_prompts(key) == []


def test_adding_the_state_version_keeps_every_account_row(db_url: str) -> None:
    """Migration 0006 on a populated database: every account, attempt, verification and
    action is still there (a table copy on SQLite would have cascaded their deletion)."""
    from alembic import command
    from sqlalchemy import text

    from tutela.store import migrate

    store = Store.open(db_url)  # makes the SQLite file's folder; migrates nothing yet
    engine = store.engine
    cfg = migrate.alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003_accounts")  # the accounts tables before the version
    t = "'2026-03-01 12:00:00'"
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO account_state (id, age_tier, risk, strikes, action, report, "
            "created_at, updated_at) "
            f"VALUES ('a1', 'unknown', 0.5, '{{}}', 'warn', false, {t}, {t})"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO account_attempts (account_id, at, kind, verdict, content_verdict, "
            "obfuscation, shingles, probe) "
            f"VALUES ('a1', {t}, 'prompt', 'block', 'block', 0, 0, false)"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO account_actions (account_id, at, action, reason, actor, report) "
            f"VALUES ('a1', {t}, 'warn', 'r', 'ladder', false)"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO account_verifications (account_id, tier, method, verified_at, "
            f"recorded_at) VALUES ('a1', 'verified_adult', 'id', {t}, {t})"
        ))  # fmt: skip
    assert set(store.upgrade()) == migrate.script_heads()
    with engine.connect() as conn:
        for table in ("account_attempts", "account_actions", "account_verifications"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 1, table
        assert conn.execute(text("SELECT version FROM account_state")).scalar_one() == 0
    store.close()
