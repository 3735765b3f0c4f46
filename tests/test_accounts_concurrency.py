"""Checks of one account racing each other, in threads and in two Guards ("workers") on one
database: no strike is lost, the ladder counts every block. Each check's state write names
the version it read; a write over a changed state is refused and the check recomputed.
Prompts are short, non-graphic filter test strings."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tutela import Guard
from tutela.accounts.repository import StaleAccountState
from tutela.accounts.tables import AttemptRow
from tutela.accounts.tiers import Feature
from tutela.decision import AccountAction, Decision

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BLOCKED = ("naked child", "naked child on a beach", "nude child", "undress the kid")


def _guard(db_url: str, tmp_path: Path, name: str) -> Guard:
    g = Guard.open(data_dir=tmp_path / name, database_url=db_url)
    g.store.upgrade()
    return g


def test_racing_blocks_of_one_account_lose_no_strike(db_url: str, tmp_path: Path) -> None:
    workers = [_guard(db_url, tmp_path, "w1"), _guard(db_url, tmp_path, "w2")]
    n = 12
    start = threading.Barrier(n)
    decisions: list[Decision] = []
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            start.wait()
            d = workers[i % 2].check_prompt(BLOCKED[i % len(BLOCKED)], account="racer",
                                            at=T0 + timedelta(seconds=i))  # fmt: skip
            decisions.append(d)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(decisions) == n
    # a check that ran before the suspension was read is a content block and a strike; the
    # others stopped at the suspension (no detector, no strike): every strike is counted
    content_blocks = sum(1 for d in decisions if "sexual_minors" in d.categories)
    view = workers[0].accounts.describe("racer", T0 + timedelta(minutes=5))
    assert content_blocks >= 3
    assert view["strikes"] == {"sexual_minors": content_blocks}
    assert view["action"]["current"] == "suspend"
    with workers[0].store.engine.connect() as conn:
        attempts = conn.execute(
            select(func.count()).select_from(AttemptRow)
            .where(AttemptRow.account_id == "racer", AttemptRow.blocked_category.is_not(None))
        ).scalar_one()  # fmt: skip
    assert attempts == content_blocks
    for d in decisions:
        assert workers[1].store.decisions.get(d.id) is not None  # every answer was stored


def test_a_state_write_over_a_changed_account_is_refused(db_url: str, tmp_path: Path) -> None:
    g = _guard(db_url, tmp_path, "w")
    m = g.accounts
    g.check_prompt(BLOCKED[0], account="s", at=T0)
    # a check reads the account ...
    gate = m.before("s", Feature.TEXT_TO_IMAGE, T0 + timedelta(minutes=1))
    screened = m.screen(gate.account, g.reader.read(BLOCKED[1]))
    outcome = m.finish(gate, screened, gate.policy.judge_prompt(screened.signals))
    assert outcome.write is not None
    # ... another check of the same account commits first ...
    other = g.check_prompt(BLOCKED[2], account="s", at=T0 + timedelta(minutes=2))
    assert other.account_action is not AccountAction.NONE
    # ... so the first one's write is refused, and nothing of it is kept
    with pytest.raises(StaleAccountState), g.store.engine.begin() as conn:
        outcome.write(conn)
    assert m.describe("s", T0 + timedelta(minutes=3))["strikes"] == {"sexual_minors": 2}
    # the Guard recomputes such a check on the fresh state: the third block suspends
    third = g.check_prompt(BLOCKED[3], account="s", at=T0 + timedelta(minutes=4))
    assert third.account_action is AccountAction.SUSPEND and third.report
