"""Batches of prompt checks (Guard.check_prompts, Store.batch, the API's PromptBatcher): one
transaction and one commit for many checks, with exactly the decisions and account state
that checking them one by one gives, and one bad check failing only itself. On SQLite and
PostgreSQL. Prompts are short, non-graphic filter test strings."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from tutela import Guard
from tutela.accounts.repository import StaleAccountState
from tutela.api.app import create_app
from tutela.decision import AccountAction, Decision, Verdict
from tutela.errors import PromptError
from tutela.guard import PromptCheck
from tutela.store.database import Store
from tutela.store.decisions import DecisionRow, decision_row
from tutela.store.fastsql import Statements
from tutela.store.keys import Scope

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PROMPTS = (
    "a watercolour of a lighthouse at dawn",
    "naked child",
    "a child at a birthday party with balloons",
    "nude child",
    "portrait of an old fisherman, oil painting",
    "undress the kid",
)


def _checks(n: int = 24) -> list[PromptCheck]:
    """Three accounts taking turns (one of them blocked again and again: the ladder climbs
    inside the batch), one check without an account."""
    out = []
    for i in range(n):
        account = None if i == 5 else ("repeat" if i % 2 else f"acct-{i % 3}")
        text = PROMPTS[i % len(PROMPTS)]
        out.append(PromptCheck(text, account, at=T0 + timedelta(seconds=i)))
    return out


def _guard(db_url: str, tmp_path: Path, name: str = "w") -> Guard:
    g = Guard.open(data_dir=tmp_path / name, database_url=db_url)
    g.store.upgrade()
    return g


def _shape(d: Decision) -> tuple[object, ...]:
    return (d.verdict, d.categories, d.reasons, d.account, d.account_action, d.report,
            d.language, d.created_at)  # fmt: skip


def _count(guard: Guard, model: type) -> int:
    with guard.store.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _row(account: str, decision_id: str | None = None) -> dict[str, object]:
    """A stored decision's row for the store-level tests (an allowed decision)."""
    decision = Decision(Verdict.ALLOW, {}, [], [], account=account)
    row = decision_row(decision, prompt="x")
    if decision_id is not None:
        row["id"] = decision_id
    return row


def test_a_batch_decides_as_the_checks_one_by_one(db_url: str, tmp_path: Path) -> None:
    batched = _guard(db_url, tmp_path, "batched")
    alone = Guard.open(data_dir=tmp_path / "alone")  # the reference, on its own SQLite
    checks = _checks()
    results = batched.check_prompts(checks)
    expected = [alone.check_prompt(c.text, c.account, at=c.at) for c in checks]
    assert all(isinstance(r, Decision) for r in results)
    assert [_shape(r) for r in results] == [_shape(e) for e in expected]  # type: ignore[arg-type]
    # the ladder climbed inside the batch exactly as outside it
    at = T0 + timedelta(minutes=5)
    for account in ("repeat", "acct-0", "acct-1", "acct-2"):
        got, want = batched.accounts.describe(account, at), alone.accounts.describe(account, at)
        assert (got["strikes"], got["action"]) == (want["strikes"], want["action"])
    assert batched.accounts.describe("repeat", at)["strikes"]["sexual_minors"] >= 2
    # every decision stored, each with its audit leaf, in the order of the batch
    for r in results:
        assert batched.store.decisions.get(r.id) is not None  # type: ignore[union-attr]
    log = batched.audit.evidence.log
    subjects = [e.subject for e in log.entries() if e.kind == "decision"]
    assert subjects == [r.id for r in results]  # type: ignore[union-attr]
    assert log.verify().ok


def test_bad_input_in_a_batch_fails_alone(db_url: str, tmp_path: Path) -> None:
    guard = _guard(db_url, tmp_path)
    too_long = "a" * (guard.settings.max_prompt_chars + 1)
    checks = [PromptCheck("a cat on a windowsill", "a"), PromptCheck(too_long, "b"),
              PromptCheck("", "c"), PromptCheck("naked child", "d")]  # fmt: skip
    results = guard.check_prompts(checks)
    assert isinstance(results[1], PromptError) and isinstance(results[2], PromptError)
    assert isinstance(results[0], Decision) and results[0].allowed
    assert isinstance(results[3], Decision) and results[3].blocked
    assert _count(guard, DecisionRow) == 2


def test_a_lone_check_is_a_batch_of_one(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's lone check takes the batch path too (one transaction for its reads and
    writes: on PostgreSQL 3 round trips instead of ~10); one that fails still fails alone,
    with nothing of it stored."""
    guard = _guard(db_url, tmp_path)
    opened: list[int] = []
    real = Store.batch

    def counting(self: Store) -> object:
        opened.append(1)
        return real(self)

    monkeypatch.setattr(Store, "batch", counting)
    (alone,) = guard.check_prompts([PromptCheck("naked child", "lone", at=T0)])
    assert isinstance(alone, Decision) and alone.blocked and opened == [1]
    assert guard.accounts.describe("lone", T0)["strikes"] == {"sexual_minors": 1}

    @guard.on_decision
    def refuse(decision: Decision, session: Session) -> None:
        raise RuntimeError("this one cannot be recorded")

    (failed,) = guard.check_prompts([PromptCheck("a lighthouse", "lone", at=T0)])
    assert isinstance(failed, RuntimeError)
    assert _count(guard, DecisionRow) == 1
    assert guard.audit.evidence.log.verify().ok


def test_a_failing_check_fails_only_itself(db_url: str, tmp_path: Path) -> None:
    """A callback raising for one decision rolls the whole batch back; the checks run again
    one by one: the others are stored once, their strikes counted once."""
    guard = _guard(db_url, tmp_path)

    @guard.on_decision
    def refuse(decision: Decision, session: Session) -> None:
        if decision.account == "bad":
            raise RuntimeError("this one cannot be recorded")

    checks = [PromptCheck("naked child", "x", at=T0), PromptCheck("a lighthouse", "bad", at=T0),
              PromptCheck("nude child", "y", at=T0), PromptCheck("a cat", "z", at=T0)]  # fmt: skip
    results = guard.check_prompts(checks)
    assert isinstance(results[1], RuntimeError)
    decided = [r for r in results if isinstance(r, Decision)]
    assert len(decided) == 3
    assert _count(guard, DecisionRow) == 3
    log = guard.audit.evidence.log
    assert sorted(e.subject for e in log.entries() if e.kind == "decision") == sorted(
        d.id for d in decided
    )
    assert guard.accounts.describe("x", T0)["strikes"] == {"sexual_minors": 1}
    assert log.verify().ok


@pytest.mark.parametrize("races", [1, 2])
def test_a_stale_account_write_inside_a_batch_reruns_it(
    db_url: str, tmp_path: Path, races: int
) -> None:
    """Another worker writing an account between a batched check's read and its write makes
    that write stale: the batch rolls back and runs once more as a batch (``races=1``);
    stale again, its checks run alone (``races=2``). Nothing lost, nothing stored twice."""
    guard = _guard(db_url, tmp_path)
    raised: list[str] = []

    @guard.on_decision
    def race(decision: Decision, session: Session) -> None:
        if len(raised) < races:
            raised.append(decision.id)
            raise StaleAccountState("an account changed meanwhile")

    opened: list[int] = []
    real_batch = guard.store.batch

    def counted_batch():  # type: ignore[no-untyped-def]
        opened.append(1)
        return real_batch()

    guard.store.batch = counted_batch  # type: ignore[method-assign]
    checks = [PromptCheck("naked child", "x", at=T0 + timedelta(seconds=i)) for i in range(3)]
    results = guard.check_prompts(checks)
    assert len(raised) == races
    assert len(opened) == 2  # the batch and its one rerun; after that, each check alone
    assert all(isinstance(r, Decision) for r in results), results
    assert _count(guard, DecisionRow) == 3
    assert guard.accounts.describe("x", T0 + timedelta(minutes=1))["strikes"] == {
        "sexual_minors": 3
    }


def test_store_batch_is_all_or_nothing(store: Store) -> None:
    """Writes join the batch; ``then`` runs after its commit only; an error commits nothing."""
    done: list[str] = []
    with store.batch():
        for name in ("a", "b"):
            store.write(lambda s, n=name: store.decisions.add(s, _row(n)),
                        then=lambda n=name: done.append(n))  # fmt: skip
        assert done == []  # not committed yet
        assert store.joined_connection() is not None
    assert done == ["a", "b"]
    assert store.joined_connection() is None
    with pytest.raises(RuntimeError), store.batch():
        store.write(lambda s: store.decisions.add(s, _row("c")), then=lambda: done.append("c"))
        raise RuntimeError("a check failed")
    assert done == ["a", "b"]
    with store.sessions() as s:
        accounts = set(s.scalars(select(DecisionRow.account)))
    assert accounts == {"a", "b"}
    with pytest.raises(RuntimeError, match="nest"), store.batch(), store.batch():
        pass


def test_concurrent_requests_share_batches(tmp_path: Path) -> None:
    """Over HTTP, checks arriving together are decided in shared batches and every answer is
    a stored decision."""
    guard = Guard.open(data_dir=tmp_path / "data", rate_limit_per_minute=0)
    _, key = guard.store.api_keys.create(Scope.CHECK, name="t")
    sizes: list[int] = []
    real = guard.check_prompts

    def counting(checks: list[PromptCheck]) -> list[Decision | Exception]:
        sizes.append(len(checks))
        return real(checks)

    guard.check_prompts = counting  # type: ignore[method-assign]
    app = create_app(guard)
    before = {s: REGISTRY.get_sample_value(f"tutela_check_batch_size_{s}") or 0.0
              for s in ("sum", "count")}  # fmt: skip

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await asyncio.gather(*[
                client.post("/v1/prompts/check", headers={"Authorization": f"Bearer {key}"},
                            json={"text": PROMPTS[i % len(PROMPTS)], "account": f"a{i % 4}"})
                for i in range(40)
            ])  # fmt: skip

    try:
        responses = asyncio.run(burst())
    finally:
        app.state.prompts.close()
    assert [r.status_code for r in responses] == [200] * 40
    for r in responses:
        assert guard.store.decisions.get(r.json()["id"]) is not None
    assert sum(sizes) == 40
    assert max(sizes) > 1  # 40 requests queued at once are not decided one by one
    # the batch-size histogram saw every batch (operators tune check_linger_ms with it)
    after = {s: REGISTRY.get_sample_value(f"tutela_check_batch_size_{s}") for s in before}
    assert after["sum"] - before["sum"] == 40  # type: ignore[operator]
    assert after["count"] - before["count"] == len(sizes)  # type: ignore[operator]


def test_a_real_race_inside_a_batch_loses_no_strike(pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL: another worker commits a change to the account between a batched check's
    read and its write. The write is refused as stale, the batch rolls back and runs again
    on the fresh state: every strike is counted once, every decision stored once. (SQLite
    cannot interleave so: a batch holds its write lock from its first write.)"""
    from sqlalchemy import text

    guard = _guard(pg_url, tmp_path)
    assert guard.check_prompt("naked child", "x", at=T0).blocked  # the account exists
    real = guard.accounts.repo.write
    raced: list[int] = []

    def racing_write(conn, state, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not raced:  # the other worker's commit, on a connection of its own
            with guard.store.engine.begin() as other:
                raced.append(other.execute(
                    text("UPDATE account_state SET version = version + 1 WHERE id = :id"),
                    {"id": state.id}).rowcount)  # fmt: skip
        return real(conn, state, *args, **kwargs)

    guard.accounts.repo.write = racing_write  # type: ignore[method-assign]
    checks = [PromptCheck("nude child", "x", at=T0 + timedelta(seconds=i)) for i in (1, 2)]
    results = guard.check_prompts([PromptCheck("a cat", "y", at=T0), *checks])
    assert raced == [1]
    assert all(isinstance(r, Decision) for r in results), results
    assert _count(guard, DecisionRow) == 4
    strikes = guard.accounts.describe("x", T0 + timedelta(minutes=1))["strikes"]
    assert strikes == {"sexual_minors": 3}


def test_a_failure_after_the_commit_does_not_undo_or_repeat_the_batch(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """What runs after a batch's commit (the monitor's in-memory index) cannot fail it: the
    decisions are stored, so a caller retrying them would store them twice."""

    def boom() -> None:
        raise RuntimeError("in-memory follower broke")

    ran: list[str] = []
    with store.batch():
        store.write(lambda s: store.decisions.add(s, _row("a")), then=boom)
        store.write(lambda s: None, then=lambda: ran.append("second"))
    assert ran == ["second"]  # the later followers still ran
    assert "the batch is committed" in caplog.text
    with store.sessions() as s:
        assert s.scalar(select(func.count()).select_from(DecisionRow)) == 1


def test_a_batch_of_one_account_stays_in_its_batch(db_url: str, tmp_path: Path) -> None:
    """The account read ahead for a batch (PostgreSQL: one read for all its checks) is read
    again after a check of the batch writes it: the ladder climbs inside the batch with no
    stale write and no rerun alone (every decision is recorded inside the batch)."""
    guard = _guard(db_url, tmp_path)
    inside: list[bool] = []

    @guard.on_decision
    def where(decision: Decision, session: Session) -> None:
        inside.append(guard.store.joined_connection() is not None)

    checks = [PromptCheck(t, "x", at=T0 + timedelta(seconds=i))
              for i, t in enumerate(("naked child", "a cat", "nude child", "a dog"))]  # fmt: skip
    results = guard.check_prompts(checks)
    assert all(isinstance(r, Decision) for r in results), results
    assert inside == [True] * 4
    assert guard.accounts.describe("x", T0 + timedelta(minutes=1))["strikes"] == {
        "sexual_minors": 2
    }


def test_a_batch_reads_ahead_only_what_its_checks_would_read(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch gates its accounts, reads its prompts and fingerprints them stage by stage
    before the checks settle (Guard._ahead). It reads no prompt of a suspended account (no
    detector runs), reads the prompt of an account an earlier check of the batch suspends
    (as alone, the check then settles on the suspension without it), and decides exactly
    as the checks one by one."""
    guard = _guard(db_url, tmp_path)
    alone = Guard.open(data_dir=tmp_path / "alone")
    for g in (guard, alone):
        g.accounts.set_action("banned", AccountAction.SUSPEND, "abuse", "admin", T0)
    read: list[str] = []
    real_read = guard.reader.read
    monkeypatch.setattr(guard.reader, "read", lambda text: read.append(text) or real_read(text))
    # x: warned, stepped up, suspended by its third block, then halted at its fourth check
    texts = ["a cat in a hat", "naked child", "naked child", "nude child", "a child at a party",
             "a red kite"]  # fmt: skip
    accounts = ["banned", "x", "x", "x", "x", "y"]
    checks = [PromptCheck(t, a, at=T0 + timedelta(seconds=i))
              for i, (t, a) in enumerate(zip(texts, accounts, strict=True))]  # fmt: skip
    results = guard.check_prompts(checks)
    expected = [alone.check_prompt(c.text, c.account, at=c.at) for c in checks]
    assert [_shape(r) for r in results] == [_shape(e) for e in expected]  # type: ignore[arg-type]
    assert results[0].verdict is Verdict.BLOCK  # type: ignore[union-attr]
    assert results[3].account_action is AccountAction.SUSPEND  # type: ignore[union-attr]
    assert results[4].signals == []  # type: ignore[union-attr]  # halted: settled unread
    assert "a cat in a hat" not in read  # the suspended account's prompt was never read
    assert sorted(read) == sorted(texts[1:])  # every other prompt once, none twice
    assert all(r.signals == e.signals for r, e in zip(results, expected, strict=True))  # type: ignore[union-attr]


def test_held_writes_are_seen_by_every_later_statement(store: Store) -> None:
    """PostgreSQL holds a batch's inserts back for one round trip: whatever runs after them
    in the batch (a prepared read, a Core query, the ORM) still sees them, and they commit
    with the batch. SQLite runs them at once: the same answers."""
    with store.batch() as batch:
        store.write(lambda s: store.decisions.add(s, _row("a", "held-1")))
        # a prepared read on the batch's connection (store/fastsql.py)
        by_id = select(DecisionRow.__table__.c.account).where(
            DecisionRow.__table__.c.id == bindparam("id"))
        assert Statements(store.engine)(by_id).first(batch.connection, {"id": "held-1"}) == (
            "a",)
        # a Core statement through SQLAlchemy
        core = batch.connection.execute(select(func.count()).select_from(DecisionRow.__table__))
        assert core.scalar() == 1
        store.write(lambda s: store.decisions.add(s, _row("b", "held-2")))
        # the ORM, through the batch's session
        assert batch.session.scalar(select(func.count()).select_from(DecisionRow)) == 2
        store.write(lambda s: store.decisions.add(s, _row("c", "held-3")))
    with store.sessions() as s:
        assert set(s.scalars(select(DecisionRow.id))) == {"held-1", "held-2", "held-3"}


def test_a_held_write_that_fails_fails_its_batch(store: Store) -> None:
    """A duplicate key among held writes surfaces when they are sent (at the latest, at the
    commit): the batch raises, nothing of it is stored, and the connection serves the next
    batch normally."""
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), store.batch():
        store.write(lambda s: store.decisions.add(s, _row("a", "dup")))
        store.write(lambda s: store.decisions.add(s, _row("b", "other")))
        store.write(lambda s: store.decisions.add(s, _row("c", "dup")))
    with store.sessions() as s:
        assert s.scalar(select(func.count()).select_from(DecisionRow)) == 0
    with store.batch():
        store.write(lambda s: store.decisions.add(s, _row("d", "after")))
    with store.sessions() as s:
        assert list(s.scalars(select(DecisionRow.id))) == ["after"]


def test_no_round_trip_is_spent_on_a_write_nobody_reads(
    pg_url: str, tmp_path: Path, round_trips: list[tuple[list[str], bool]]
) -> None:
    """PostgreSQL: in a batch whose accounts are blocked and climb the ladder (attempts and
    actions written, state updated), the inserts nobody reads an answer from (decision,
    attempt, action, audit leaf) never end a round trip of their own: they travel with the
    next statement whose answer is read (a SELECT, the state's write for its row count)
    or with the COMMIT. Each attempt and action insert used to take a round trip alone."""
    guard = _guard(pg_url, tmp_path)
    results = guard.check_prompts(_checks())
    # (the last statement's SQL, whether COMMIT follows) of each round trip
    trips = [(sqls[-1] if sqls else "", commit) for sqls, commit in round_trips]
    assert all(isinstance(r, Decision) for r in results), results
    assert guard.accounts.describe("repeat", T0)["action"] != "none"  # actions were logged
    assert trips and trips[-1][1]  # the last one carries the COMMIT
    unread = tuple(f"INSERT INTO {table} " for table in
                   ("decisions", "audit_log", "account_attempts", "account_actions"))  # fmt: skip
    assert any(sql.startswith("UPDATE account_state") for sql, _ in trips)  # the ladder ran
    assert [sql for sql, commit in trips if sql.startswith(unread) and not commit] == []


def test_a_connection_lost_with_writes_held_is_a_503_not_a_loss(pg_url: str) -> None:
    """PostgreSQL: the server goes away while a batch holds its writes. The batch fails as
    "database unavailable" (the API's 503, nobody answered), nothing is half-stored, and the
    pool hands the next batch a fresh connection."""
    from sqlalchemy import text

    from tutela.errors import StoreUnavailable

    store = Store.open(pg_url)
    store.upgrade()
    with pytest.raises(StoreUnavailable), store.batch() as batch:
        store.write(lambda s: store.decisions.add(s, _row("a", "lost-1")))
        pid = batch.connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with store.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        store.write(lambda s: store.decisions.add(s, _row("b", "lost-2")))
    with store.batch():
        store.write(lambda s: store.decisions.add(s, _row("c", "after")))
    with store.sessions() as s:
        assert list(s.scalars(select(DecisionRow.id))) == ["after"]
    store.close()


@pytest.mark.parametrize("linger", [0.0, 0.5])
def test_a_loaded_worker_waits_a_moment_for_company(tmp_path: Path, linger: float) -> None:
    """After a batch of several checks, a new batch holding few waits ``linger`` seconds for
    more (check_linger_ms): a check arriving 0.1 s later joins it. With no linger it is
    decided alone."""
    import threading

    from tutela.api.batcher import PromptBatcher

    guard = Guard.open(data_dir=tmp_path / "data")
    sizes: list[int] = []
    real = guard.check_prompts
    release = threading.Event()

    def recording(checks: list[PromptCheck]) -> list[Decision | Exception]:
        sizes.append(len(checks))
        if len(sizes) == 1:
            release.wait(5)  # the first batch is held up: the next two queue behind it
        return real(checks)

    guard.check_prompts = recording  # type: ignore[method-assign]
    batcher = PromptBatcher(guard, linger=linger)

    async def run() -> None:
        first = asyncio.ensure_future(batcher.check(PromptCheck("a lighthouse", "a")))
        await asyncio.sleep(0.05)  # the thread is in the first batch
        queued = [asyncio.ensure_future(batcher.check(PromptCheck("a cat", f"b{i}")))
                  for i in range(2)]  # fmt: skip
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(first, *queued)  # a batch of 1, then one of 2: under load
        late = asyncio.ensure_future(batcher.check(PromptCheck("a dog", "c")))
        await asyncio.sleep(0.1)
        later = asyncio.ensure_future(batcher.check(PromptCheck("a fox", "d")))
        decided = await asyncio.gather(late, later)
        assert all(d.allowed for d in decided)

    try:
        asyncio.run(run())
    finally:
        batcher.close()
    assert sizes[:2] == [1, 2]
    assert sizes[2:] == ([2] if linger else [1, 1])


def test_gathering_company_defaults_to_the_database(tmp_path: Path) -> None:
    """``check_linger_ms`` and ``check_yields`` unset: SQLite lingers 2 ms and never yields;
    PostgreSQL yields the core up to 16 times and never lingers (its batches cost round
    trips and two workers share the core: docs/service.md). A value given is kept, 0 too,
    shown by ``config show``, and the app's batcher runs with the effective values."""
    from tutela.config import Settings

    pg = "postgresql+psycopg://tutela@127.0.0.1:5432/tutela"
    lite = Settings.load(data_dir=tmp_path)
    assert (lite.effective_check_linger_ms, lite.effective_check_yields) == (2.0, 0)
    post = Settings.load(data_dir=tmp_path, database_url=pg)
    assert (post.effective_check_linger_ms, post.effective_check_yields) == (0.0, 16)
    assert Settings.load(data_dir=tmp_path, database_url=pg,
                         check_yields=0).effective_check_yields == 0  # fmt: skip
    settings = Settings.load(data_dir=tmp_path, database_url=pg, check_linger_ms=7,
                             check_yields=3)  # fmt: skip
    assert (settings.effective_check_linger_ms, settings.effective_check_yields) == (7.0, 3)
    assert (settings.masked()["check_linger_ms"], settings.masked()["check_yields"]) == (7.0, 3)
    assert (lite.masked()["check_linger_ms"], post.masked()["check_yields"]) == (2.0, 16)
    guard = Guard.open(data_dir=tmp_path / "data", check_linger_ms=3, check_yields=5)
    prompts = create_app(guard).state.prompts
    assert (prompts.linger, prompts.yields) == (0.003, 5)


@pytest.mark.parametrize(("queued", "arrive", "yields", "expected"), [
    (8, 0, 16, 0),  # enough are waiting: no yield
    (2, 1, 16, 6),  # one more arrives per yield: the core is given up until 8 wait
    (2, 0, 5, 5),  # nobody comes: at most ``yields`` times, then the batch starts
    (2, 1, 0, 0),  # yields off (SQLite's default)
])  # fmt: skip
def test_a_loaded_batch_gives_up_the_core_until_enough_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    queued: int, arrive: int, yields: int, expected: int,
) -> None:  # fmt: skip
    """Under load a new batch first yields the core (os.sched_yield) while fewer than
    YIELD_UNTIL checks are queued, at most ``check_yields`` times; with no linger it then
    starts without sleeping."""
    from tutela.api import batcher as batcher_module

    batcher = batcher_module.PromptBatcher(Guard.open(data_dir=tmp_path / "d"), yields=yields)
    for _ in range(queued):
        batcher._queue.put(None)
    calls: list[int] = []

    def sched_yield() -> None:  # another process ran, and its requests were queued
        calls.append(batcher._queue.qsize())
        for _ in range(arrive):
            batcher._queue.put(None)

    monkeypatch.setattr(batcher_module.os, "sched_yield", sched_yield)
    monkeypatch.setattr(batcher_module.time, "sleep", lambda _: pytest.fail("lingered"))
    batcher._gather()
    assert len(calls) == expected
    assert batcher_module.YIELD_UNTIL == 8
