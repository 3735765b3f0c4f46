"""The rules that read an account's history: probing, and the escalation ladder.

Pure functions of values (attempts, times, the accounts policy): no I/O, no clock, so each
rule is tested on hand-made histories and replays give the same answer every time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tutela.accounts.fingerprint import Fingerprint, similarity
from tutela.accounts.policy import EscalationRule, Probing
from tutela.accounts.state import AccountState, Attempt
from tutela.decision import AccountAction, Verdict, strictest_action


@dataclass(frozen=True, slots=True)
class ProbeFinding:
    """Why an attempt counts as a probe (or not): the signs seen against blocked attempts."""

    probe: bool
    similarity: float = 0.0
    signs: tuple[str, ...] = ()


def find_probe(
    fp: Fingerprint | None,
    concern: Verdict,
    language: str | None,
    obfuscation: int,
    recent: Sequence[Attempt],
    at: datetime,
    rules: Probing,
) -> ProbeFinding:
    """Is this attempt a probe of an earlier block? ``recent`` is the account's remembered
    attempts, oldest first; ``concern`` is this attempt's verdict as far as the probing
    categories go (a block for adult content is ``allow`` here: probing is about one thing).
    See :class:`tutela.accounts.policy.Probing` for the rule."""
    window = timedelta(minutes=rules.window_minutes)
    cats = {c.value for c in rules.categories}
    blocked = [
        a for a in recent if a.blocked_category in cats and timedelta(0) <= at - a.at <= window
    ]
    if not blocked:
        return ProbeFinding(False)
    best: Attempt | None = None
    best_sim = 0.0
    if fp is not None:
        for a in blocked:
            if a.fingerprint is None:
                continue
            s = similarity(fp, a.fingerprint, rules.min_containment_shingles)
            if s > best_sim:
                best, best_sim = a, s
    last = recent[-1] if recent else None
    signs: list[str] = []
    if concern is not Verdict.ALLOW:
        signs.append("blocked_again" if concern is Verdict.BLOCK else "reviewed_again")
    reference = best if best is not None and best_sim >= rules.similarity else blocked[-1]
    if obfuscation > reference.obfuscation:
        signs.append("more_obfuscation")
    if (
        last is not None
        and last.blocked_category in cats
        and language
        and last.language
        and language != last.language
    ):
        signs.append("language_switch")
    near = best_sim >= rules.similarity
    if near:
        probe = bool(signs)
        return ProbeFinding(probe, best_sim, ("near_duplicate", *signs))
    probe = "language_switch" in signs and concern is not Verdict.ALLOW
    return ProbeFinding(probe, best_sim, tuple(signs))


def count_probes(recent: Iterable[Attempt], at: datetime, rules: Probing) -> int:
    """Probes remembered within the probing window before ``at``."""
    window = timedelta(minutes=rules.window_minutes)
    return sum(1 for a in recent if a.probe and timedelta(0) <= at - a.at <= window)


@dataclass(frozen=True, slots=True)
class Events:
    """What this attempt adds to the account's story (the ladder's triggers)."""

    blocked_category: str | None = None
    probing: bool = False
    coded_abuse: bool = False
    reuse: bool = False
    bank_match: bool = False

    def any(self) -> bool:
        return bool(
            self.blocked_category or self.probing or self.coded_abuse or self.reuse
            or self.bank_match
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Escalation:
    """The rungs that fired and the action the account ends up with."""

    action: AccountAction
    until: datetime | None
    report: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)
    changed: bool = False


def _fires(rule: EscalationRule, ev: Events, block_times: dict[str, list[datetime]],
           at: datetime) -> bool:  # fmt: skip
    if rule.when == "blocks":
        if ev.blocked_category != rule.category.value:
            return False
        times = block_times.get(rule.category.value, [])
        if rule.within_hours is not None:
            since = at - timedelta(hours=rule.within_hours)
            times = [t for t in times if t >= since]
        return len(times) >= rule.count
    return bool(getattr(ev, rule.when))  # probing, coded_abuse, reuse, bank_match


def _describe(rule: EscalationRule) -> str:
    if rule.when == "blocks":
        span = f" within {rule.within_hours:g} h" if rule.within_hours else ""
        n = "a block" if rule.count == 1 else f"{rule.count} blocks"
        what = f"{n} for {rule.category.value}{span}"
    else:
        what = {
            "probing": "iterative probing after a block",
            "coded_abuse": "a coded abuse term",
            "reuse": "reuse of a prompt blocked for another account",
            "bank_match": "a prompt whose output was blocked before",
        }[rule.when]
    return f"{what} -> {rule.action}" + (" and report" if rule.report else "")


def escalate(
    state: AccountState,
    events: Events,
    block_times: dict[str, list[datetime]],
    rules: Sequence[EscalationRule],
    at: datetime,
) -> Escalation:
    """Apply the ladder. ``block_times`` lists the account's content blocks per category,
    this attempt's included. The strictest of the action in force and the fired rungs wins;
    a rung of the same action as the one in force extends its expiry."""
    current = state.action_in_force(at)
    until = state.action_until if current is not AccountAction.NONE else None
    report = False
    reasons: list[str] = []
    changed = False
    if not events.any():
        return Escalation(current, until, False)
    fired = [rule for rule in rules if _fires(rule, events, block_times, at)]
    top = max((_rank(r.action) for r in fired), default=0)
    for rule in fired:
        if _rank(rule.action) == top or rule.report:
            reasons.append(_describe(rule))
        report = report or rule.report
        minutes = rule.duration_minutes
        rule_until = at + timedelta(minutes=minutes) if minutes else None
        if strictest_action(current, rule.action) is not current:
            current, until, changed = rule.action, rule_until, True
        elif (
            rule.action is current
            and until is not None
            and (rule_until is None or rule_until > until)
        ):
            until, changed = rule_until, True
    return Escalation(current, until, report, tuple(reasons), changed or report)


_RANKS = {action: i for i, action in enumerate(AccountAction)}


def _rank(action: AccountAction) -> int:
    return _RANKS[action]
