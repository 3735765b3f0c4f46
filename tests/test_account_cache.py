"""Account rows remembered between batches of checks (accounts/cache.py) and the held read
that confirms them (store/fastsql.py, ``send(..., check=...)``). The batch-level tests run on
the throw-away PostgreSQL server: the cache serves the PostgreSQL batch only. Prompts are
short, non-graphic filter test strings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import bindparam, func, select

from tutela import Guard
from tutela.accounts.cache import AccountRowCache
from tutela.decision import AccountAction, Decision, Verdict
from tutela.guard import PromptCheck
from tutela.store.database import Store
from tutela.store.decisions import DecisionRow, decision_row
from tutela.store.fastsql import Statements

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_FULL_READ = "SELECT account_state.id, account_state.age_tier"
_VERSIONS_READ = "SELECT account_state.id, account_state.version"


def _guard(url: str, tmp_path: Path, name: str, **settings: object) -> Guard:
    g = Guard.open(data_dir=tmp_path / name, database_url=url, **settings)
    g.store.upgrade()
    return g


def _batch(accounts: list[str], second: int = 0, text: str = "a cat on a windowsill"):
    return [PromptCheck(text, a, at=T0 + timedelta(seconds=second)) for a in accounts]


# --- the cache itself -------------------------------------------------------------------
def test_the_cache_keeps_the_latest_reads_up_to_its_size() -> None:
    cache = AccountRowCache(3)
    cache.remember({"a": ("a", 1), "b": None, "c": ("c", 4)})
    assert cache.known(["a", "b", "z"]) == {"a": ("a", 1), "b": None}  # None: known, no row
    cache.remember({"a": ("a", 2), "d": ("d", 1)})  # a read again: now the newest
    assert len(cache) == 3
    assert cache.known(["a", "b", "c", "d"]) == {"a": ("a", 2), "c": ("c", 4), "d": ("d", 1)}
    cache.forget(["c", "nobody"])
    assert cache.known(["c", "d"]) == {"d": ("d", 1)}


def test_a_cache_of_size_zero_remembers_nothing() -> None:
    cache = AccountRowCache(0)
    cache.remember({"a": ("a", 1)})
    assert cache.known(["a"]) == {} and len(cache) == 0


# --- a held read with a check (store/fastsql.py) ----------------------------------------
def _by_account(store: Store):  # type: ignore[no-untyped-def]
    t = DecisionRow.__table__
    return Statements(store.engine)(select(t.c.id).where(t.c.account == bindparam("account")))


def test_a_held_check_sees_its_rows_and_can_fail_the_batch(store: Store) -> None:
    """The check gets the statement's rows; what it raises fails the batch before anything
    commits, on both databases (SQLite runs the read at once)."""
    seen: list[list[tuple[object, ...]]] = []
    with store.batch() as batch:
        store.write(lambda s: store.decisions.add(s, {**decision_row(
            Decision(Verdict.ALLOW, {}, [], [], account="a"), prompt="x"), "id": "d1"}))
        _by_account(store).send(batch.connection, {"account": "a"}, check=seen.append)
    assert seen == [[("d1",)]]

    def refuse(rows: list[tuple[object, ...]]) -> None:
        raise LookupError(f"{len(rows)} rows: not what the batch assumed")

    with pytest.raises(LookupError), store.batch() as batch:
        store.write(lambda s: store.decisions.add(s, {**decision_row(
            Decision(Verdict.ALLOW, {}, [], [], account="b"), prompt="x"), "id": "d2"}))
        _by_account(store).send(batch.connection, {"account": "a"}, check=refuse)
    with store.sessions() as s:
        assert list(s.scalars(select(DecisionRow.id))) == ["d1"]  # d2 rolled back


def test_a_check_still_held_at_the_end_is_answered_before_the_commit(
    pg_url: str, round_trips: list[tuple[list[str], bool]]
) -> None:
    """PostgreSQL: a checked read still held when the batch ends goes in a round trip of
    its own, and the COMMIT follows in another, so a failing check commits nothing."""
    store = Store.open(pg_url)
    store.upgrade()
    calls: list[int] = []

    def refuse(rows: list[tuple[object, ...]]) -> None:
        calls.append(len(rows))
        raise LookupError("refused")

    try:
        with pytest.raises(LookupError), store.batch() as batch:
            store.write(lambda s: store.decisions.add(s, {**decision_row(
                Decision(Verdict.ALLOW, {}, [], [], account="c"), prompt="x"), "id": "d3"}))
            _by_account(store).send(batch.connection, {"account": "c"}, check=refuse)
        assert calls == [1]  # it saw the held insert before it, in the same transaction
        assert [commit for _, commit in round_trips] == [False]  # the COMMIT never went out
        with store.sessions() as s:
            assert s.scalar(select(func.count()).select_from(DecisionRow)) == 0
    finally:
        store.close()


# --- batches of checks on remembered accounts (PostgreSQL) ------------------------------
def test_a_batch_of_remembered_accounts_reads_none_before_deciding(
    pg_url: str, tmp_path: Path, round_trips: list[tuple[list[str], bool]]
) -> None:
    """The second batch of the same accounts decides on the rows the first one read: no
    read of its own, one round trip fewer; their versions travel with the audit log's
    lock, before the COMMIT."""
    guard = _guard(pg_url, tmp_path, "w")
    accounts = ["a", "b", "c"]
    # b has a row (blocked long ago, outside the window whose attempts a check reads), a
    # and c have none
    assert guard.check_prompt("naked child", "b", at=T0 - timedelta(days=60)).blocked
    first = guard.check_prompts(_batch(accounts, 1))
    assert all(isinstance(d, Decision) for d in first)
    assert any(_FULL_READ in sql for sqls, _ in round_trips for sql in sqls)  # read once
    round_trips.clear()
    second = guard.check_prompts(_batch(accounts, 2))
    assert [d.verdict for d in second] == [d.verdict for d in first]  # type: ignore[union-attr]
    statements = [sql for sqls, _ in round_trips for sql in sqls]
    assert not any(_FULL_READ in sql for sql in statements)
    # was 3: the accounts' read, the lock, the COMMIT
    assert len(round_trips) == 2 and round_trips[-1][1]
    confirming = [sqls for sqls, commit in round_trips if any(_VERSIONS_READ in s for s in sqls)]
    assert len(confirming) == 1 and not round_trips[0][1] and _VERSIONS_READ in round_trips[0][0][0]


def test_a_change_on_another_worker_is_seen_by_the_next_batch(
    pg_url: str, tmp_path: Path
) -> None:
    """Worker A remembers account x; worker B suspends it. A's next batch (x and y
    remembered, z new: the versions' read travels with z's read) must refuse x (its
    remembered row is stale: the batch runs again on the stored one), and stores each
    decision once."""
    a = _guard(pg_url, tmp_path, "a")
    b = _guard(pg_url, tmp_path, "b")
    assert a.check_prompts(_batch(["x", "y"], 1))[0].verdict is Verdict.ALLOW  # type: ignore[union-attr]
    assert a.accounts.repo.cache.known(["x"]) == {"x": None}  # remembered: no row yet
    b.accounts.set_action("x", AccountAction.SUSPEND, "abuse", "admin", T0)
    x, y, z = a.check_prompts(_batch(["x", "y", "z"], 2))
    assert isinstance(x, Decision) and x.verdict is Verdict.BLOCK
    assert x.account_action is AccountAction.SUSPEND
    assert isinstance(y, Decision) and y.verdict is Verdict.ALLOW
    assert isinstance(z, Decision) and z.verdict is Verdict.ALLOW
    with a.store.sessions() as s:
        stored = s.scalar(select(func.count()).select_from(DecisionRow))
    assert stored == 5  # batches of two and three: the rerun stored nothing twice
    assert a.audit.evidence.log.verify().ok
    # and A now remembers the row B wrote: the next batch decides on it without a read
    (row,) = a.accounts.repo.cache.known(["x"]).values()
    assert row is not None and x.account_action is AccountAction.SUSPEND
    assert a.check_prompts(_batch(["x"], 3))[0].verdict is Verdict.BLOCK  # type: ignore[union-attr]


def test_a_lifted_suspension_is_seen_too(pg_url: str, tmp_path: Path) -> None:
    """The other direction: A remembers x suspended; B lifts it; A allows x again at once."""
    a = _guard(pg_url, tmp_path, "a")
    b = _guard(pg_url, tmp_path, "b")
    b.accounts.set_action("x", AccountAction.SUSPEND, "abuse", "admin", T0)
    assert a.check_prompts(_batch(["x"], 1))[0].verdict is Verdict.BLOCK  # type: ignore[union-attr]
    b.accounts.set_action("x", AccountAction.NONE, "appeal upheld", "admin", T0)
    assert a.check_prompts(_batch(["x"], 2))[0].verdict is Verdict.ALLOW  # type: ignore[union-attr]


def test_without_the_cache_every_batch_reads_its_accounts(
    pg_url: str, tmp_path: Path, round_trips: list[tuple[list[str], bool]]
) -> None:
    guard = _guard(pg_url, tmp_path, "w", account_cache_size=0)
    guard.check_prompts(_batch(["a", "b"], 1))
    round_trips.clear()
    guard.check_prompts(_batch(["a", "b"], 2))
    assert len(round_trips) == 3 and _FULL_READ in round_trips[0][0][0]
    assert not any(_VERSIONS_READ in sql for sqls, _ in round_trips for sql in sqls)
