"""The account monitor through the Guard: escalation, enforcement, reuse, the prompt bank,
age assurance, replay with ``at``, on SQLite and (for the core path) PostgreSQL.

Prompts are short, non-graphic filter test strings.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tutela import Guard
from tutela.accounts.state import Verification
from tutela.accounts.tiers import AgeTier, Feature
from tutela.decision import AccountAction, Verdict
from tutela.errors import InputError, PromptError

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BLOCKED = "naked child on a beach at sunset"
BENIGN = "a watercolour of a lighthouse at dawn"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def rank(action: AccountAction) -> int:
    return list(AccountAction).index(action)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_guard(request: pytest.FixtureRequest, tmp_path: Path) -> Guard:
    if request.param == "sqlite":
        return Guard.open(data_dir=tmp_path / "data")
    g = Guard.open(data_dir=tmp_path / "data", database_url=request.getfixturevalue("pg_url"))
    g.store.upgrade()
    return g


def test_ladder_warn_cooldown_suspend_and_report(any_guard: Guard) -> None:
    g = any_guard
    d1 = g.check_prompt(BLOCKED, account="a1", at=at(0))
    assert d1.verdict is Verdict.BLOCK and d1.account_action is AccountAction.WARN
    assert not d1.report
    d2 = g.check_prompt("naked child on the beach", account="a1", at=at(5))
    assert d2.account_action in (AccountAction.COOLDOWN, AccountAction.STEP_UP)
    # while cooling down even a harmless prompt is blocked
    d3 = g.check_prompt(BENIGN, account="a1", at=at(6))
    assert d3.verdict is Verdict.BLOCK and rank(d3.account_action) >= rank(AccountAction.COOLDOWN)
    d4 = g.check_prompt("naked child", account="a1", at=at(8))
    assert d4.account_action is AccountAction.SUSPEND and d4.report
    view = g.accounts.describe("a1", at(9))
    assert view["strikes"] == {"sexual_minors": 3}
    assert view["report"] is True and view["action"]["current"] == "suspend"
    assert view["actions"][0]["action"] == "suspend"
    # other accounts are untouched
    assert g.check_prompt(BENIGN, account="a2", at=at(9)).account_action is AccountAction.NONE


def test_suspended_account_is_blocked_before_any_detector_runs(guard: Guard) -> None:
    guard.accounts.set_action("s1", AccountAction.SUSPEND, "manual review", "admin", at(0))

    def no_detectors(text: str) -> None:
        raise AssertionError("the prompt reader ran for a suspended account")

    guard.reader.read = no_detectors  # type: ignore[method-assign]
    d = guard.check_prompt(BENIGN, account="s1", at=at(1))
    assert d.verdict is Verdict.BLOCK and d.account_action is AccountAction.SUSPEND
    assert d.signals == [] and d.categories == {}
    assert "manual review" in d.reasons[0]
    with pytest.raises(PromptError):  # bad input is still refused as bad input
        guard.check_prompt("   ", account="s1", at=at(2))


def test_cooldown_lapses_and_admin_lift(guard: Guard) -> None:
    guard.check_prompt(BLOCKED, account="c1", at=at(0))
    guard.check_prompt("naked child", account="c1", at=at(1))
    assert guard.check_prompt(BENIGN, account="c1", at=at(30)).verdict is Verdict.BLOCK
    later = guard.check_prompt(BENIGN, account="c1", at=at(5 * 60))
    assert later.verdict is Verdict.ALLOW
    guard.accounts.set_action("c1", AccountAction.SUSPEND, "abuse", "admin", at(301))
    assert guard.check_prompt(BENIGN, account="c1", at=at(302)).verdict is Verdict.BLOCK
    guard.accounts.set_action("c1", AccountAction.NONE, "appeal upheld", "admin", at(303))
    lifted = guard.check_prompt(BENIGN, account="c1", at=at(304))
    assert lifted.verdict is Verdict.ALLOW and lifted.account_action is AccountAction.NONE


def test_coded_abuse_term_suspends_at_once_and_flags_report(guard: Guard) -> None:
    d = guard.check_prompt("pthc", account="k1", at=at(0))
    assert d.verdict is Verdict.BLOCK
    assert d.account_action is AccountAction.SUSPEND and d.report


def test_probing_steps_up_until_a_stronger_verification(guard: Guard) -> None:
    guard.check_prompt(BLOCKED, account="p1", at=at(0))
    d = guard.check_prompt("n4ked ch1ld on a b3ach at sunset", account="p1", at=at(1))
    assert d.account_action is AccountAction.STEP_UP
    assert any("probing" in r for r in d.reasons)
    # hours later the cooldown is long over, but the step-up holds
    assert guard.check_prompt(BENIGN, account="p1", at=at(600)).verdict is Verdict.BLOCK
    weak = Verification(AgeTier.SELF_DECLARED, "checkbox", at(601))
    guard.accounts.record_verification("p1", weak, at(601))
    assert guard.check_prompt(BENIGN, account="p1", at=at(602)).verdict is Verdict.BLOCK
    strong = Verification(AgeTier.VERIFIED_ADULT, "id_document", at(603), provider="acme")
    guard.accounts.record_verification("p1", strong, at(603))
    ok = guard.check_prompt(BENIGN, account="p1", at=at(604))
    assert ok.verdict is Verdict.ALLOW and ok.account_action is AccountAction.NONE
    view = guard.accounts.describe("p1", at(605))
    assert view["age"]["tier"] == "verified_adult" and view["age"]["method"] == "id_document"
    assert [v["tier"] for v in view["verifications"]] == ["self_declared", "verified_adult"]


def test_honest_user_with_one_false_block_is_only_warned(guard: Guard) -> None:
    texts = [
        "toddler running naked through the garden sprinkler",
        "toddler running through the garden sprinkler",
        "toddler running through the garden sprinkler, summer afternoon",
        "toddler running through the garden sprinkler, summer afternoon, film photo",
    ]
    actions = [guard.check_prompt(t, account="h1", at=at(i)).account_action for i, t in
               enumerate(texts)]  # fmt: skip
    assert actions[0] is AccountAction.WARN
    assert all(rank(a) <= rank(AccountAction.WARN) for a in actions)
    assert guard.check_prompt(texts[-1], account="h1", at=at(5)).verdict is Verdict.ALLOW


def test_blocked_prompt_reused_by_another_account_is_recognised(any_guard: Guard) -> None:
    g = any_guard
    g.check_prompt(BLOCKED, account="origin", at=at(0))
    again = g.check_prompt(BLOCKED, account="origin", at=at(1))
    assert "blocked_prompt_reuse" not in {s.kind for s in again.signals}  # same account
    other = g.check_prompt("n4ked child on a beach at sunset, 8k", account="copycat", at=at(2))
    reuse = [s for s in other.signals if s.kind == "blocked_prompt_reuse"]
    assert reuse and reuse[0].evidence["other_accounts"] == 1
    unrelated = g.check_prompt(BENIGN, account="bystander", at=at(3))
    assert "blocked_prompt_reuse" not in {s.kind for s in unrelated.signals}


def test_prompt_whose_output_was_blocked_is_blocked_for_everyone(guard: Guard) -> None:
    learned = "a girl in a sundress playing on the beach at sunset, photorealistic"
    before = guard.check_prompt(learned, account="x1", at=at(0))
    assert before.verdict is Verdict.ALLOW
    key = guard.accounts.learn_output_block(learned, "x1", at(1))
    assert key is not None
    assert guard.accounts.learn_output_block(learned, "x2", at(2)) is None  # already banked
    for account in ("x2", None):
        d = guard.check_prompt(
            "a girl in a sundress playing on the beach at sunset photorealistic 4k",
            account=account,
            at=at(3),
        )
        assert d.verdict is Verdict.BLOCK
        assert d.categories["sexual_minors"] >= 0.8
        assert "bank_match" in {s.kind for s in d.signals}
    assert guard.check_prompt(BENIGN, account="x2", at=at(4)).verdict is Verdict.ALLOW


def test_bank_survives_reopen_and_reaches_other_workers(tmp_path: Path) -> None:
    learned = "a girl in a sundress playing on the beach at sunset, photorealistic"
    g1 = Guard.open(data_dir=tmp_path / "d")
    g2 = Guard.open(data_dir=tmp_path / "d")  # a second worker on the same store
    g2.check_prompt(BENIGN, account="w", at=at(0))  # its index is loaded (empty) now
    g1.accounts.learn_output_block(learned, None, at(1))
    g2.accounts.refresh_seconds = 0.0
    assert g2.check_prompt(learned, account="w", at=at(2)).verdict is Verdict.BLOCK
    g3 = Guard.open(data_dir=tmp_path / "d")
    assert g3.check_prompt(learned, account="v", at=at(3)).verdict is Verdict.BLOCK


def test_own_blocks_join_the_index_at_once_and_other_workers_entries_are_not_skipped(
    tmp_path: Path,
) -> None:
    """A worker adds its own committed blocked prompts to its index without a refresh; an
    entry another worker wrote before them (a lower id it has not read) still arrives."""
    g1 = Guard.open(data_dir=tmp_path / "d")
    g2 = Guard.open(data_dir=tmp_path / "d")
    g1.check_prompt(BENIGN, account="w", at=at(0))  # g1's index is loaded (empty) now
    theirs = "nude 12 year old girl"
    assert g2.check_prompt(theirs, account="a", at=at(1)).verdict is Verdict.BLOCK
    assert g1.check_prompt(BLOCKED, account="b", at=at(2)).verdict is Verdict.BLOCK
    g1.accounts.refresh_seconds = 3600.0  # no periodic refresh: only the commit hook
    mine = g1.check_prompt(BLOCKED, account="c", at=at(3))
    assert "blocked_prompt_reuse" in {s.kind for s in mine.signals}
    g1.accounts.refresh_seconds = 0.0
    other = g1.check_prompt(theirs, account="d", at=at(4))
    assert "blocked_prompt_reuse" in {s.kind for s in other.signals}


def test_age_assurance_rules(guard: Guard) -> None:
    m = guard.accounts
    m.record_verification(
        "kid", Verification(AgeTier.MINOR, "facial_estimation", at(0), age_years=14,
                            jurisdiction="ES"), at(0),
    )  # fmt: skip
    d = guard.check_prompt(BENIGN, account="kid", at=at(1))
    assert d.verdict is Verdict.BLOCK and "under 16 in ES" in d.reasons[0]
    m.record_verification(
        "teen", Verification(AgeTier.MINOR, "id_document", at(0), age_years=17), at(0)
    )
    assert guard.check_prompt(BENIGN, account="teen", at=at(1)).verdict is Verdict.ALLOW
    # unknown accounts keep ordinary text-to-image generation
    assert guard.check_prompt(BENIGN, account="new", at=at(1)).verdict is Verdict.ALLOW
    # editing a real person's photo needs verified_adult
    assert m.before("new", Feature.EDIT_REAL_PERSON, at(2)).refusals
    assert m.before("teen", Feature.EDIT_REAL_PERSON, at(2)).refusals
    m.record_verification("adult", Verification(AgeTier.VERIFIED_ADULT, "eid", at(0)), at(0))
    assert not m.before("adult", Feature.EDIT_REAL_PERSON, at(2)).refusals


def test_risk_raises_strictness(guard: Guard) -> None:
    base = guard.accounts.before("r1", Feature.TEXT_TO_IMAGE, at(0)).policy.thresholds
    guard.check_prompt(BLOCKED, account="r1", at=at(0))
    gate = guard.accounts.before("r1", Feature.TEXT_TO_IMAGE, at(1))
    assert gate.band == "elevated" and gate.risk > 0.29
    assert gate.policy.thresholds.block < base.block
    assert gate.policy.thresholds.review < base.review
    # risk decays: four weeks later the account is back to the ordinary thresholds
    assert guard.accounts.before("r1", Feature.TEXT_TO_IMAGE, at(4 * 7 * 24 * 60)).band is None


@pytest.mark.parametrize("account", ["", "x" * 257, "bad\x00id", " padded", 42])
def test_bad_account_ids_are_refused_and_nothing_is_stored(guard: Guard, account: object) -> None:
    with pytest.raises(InputError):
        guard.check_prompt(BLOCKED, account=account, at=at(0))  # type: ignore[arg-type]
    assert guard.store.decisions.for_account(str(account)) == []


def test_naive_replay_time_is_refused(guard: Guard) -> None:
    with pytest.raises(InputError):
        guard.check_prompt(BENIGN, account="a", at=datetime(2026, 1, 1))


def test_admin_actions_need_a_reason(guard: Guard) -> None:
    with pytest.raises(InputError):
        guard.accounts.set_action("a", AccountAction.SUSPEND, "  ", "admin", at(0))


def test_account_state_commits_with_the_decision_or_not_at_all(guard: Guard) -> None:
    def broken(decision, session) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("recording failed")

    guard.on_decision(broken)
    with pytest.raises(RuntimeError):
        guard.check_prompt(BLOCKED, account="atomic", at=at(0))
    assert guard.accounts.describe("atomic", at(1))["known"] is False
    guard._decision_callbacks.remove(broken)
    d = guard.check_prompt(BLOCKED, account="atomic", at=at(2))
    assert d.account_action is AccountAction.WARN
    assert guard.accounts.describe("atomic", at(3))["strikes"] == {"sexual_minors": 1}
    assert guard.store.decisions.get(d.id) is not None
