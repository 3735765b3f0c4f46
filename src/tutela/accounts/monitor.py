"""The account monitor: the Guard calls it before the policy and after it, on every check.

``before`` loads the account and says what stands in the way regardless of content (a
suspension halts the check before any detector runs; a cooldown, a step-up or an age rule
blocks it) and which thresholds apply at the account's risk. ``screen`` fingerprints the
normalised prompt and looks it up in the learned prompt bank and the cross-account index of
blocked prompts. ``finish`` turns the policy's judgement plus the account's history into the
final verdict and the account action, and remembers what is worth remembering.

The rules themselves live in :mod:`.ladder` (pure) and in the policy's ``accounts`` section;
this module only moves values between the store, the indexes and those rules.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from tutela.accounts.fingerprint import Fingerprint, Hit, LshIndex, fingerprint, fingerprints
from tutela.accounts.ladder import (
    Escalation,
    Events,
    ProbeFinding,
    count_probes,
    escalate,
    find_probe,
)
from tutela.accounts.repository import AccountRepository, ActionChange, StaleAccountState
from tutela.accounts.state import AccountState, Attempt, Verification
from tutela.accounts.tables import ACCOUNT_ID_MAX
from tutela.accounts.tiers import GENERATION_FEATURES, AgeTier, Feature, meets
from tutela.decision import AccountAction, Category, Signal, Verdict
from tutela.errors import InputError, StoreUnavailable
from tutela.policy import Judgement, Policy, Thresholds
from tutela.store.admin import AdminAction
from tutela.text.reader import PromptReader, PromptReading

DETECTOR = "account_monitor"
SM = Category.SEXUAL_MINORS.value
_NEAR_IDENTICAL = 0.95
_NOT_A_PROBE = ProbeFinding(False)  # what find_probe says with no recent attempt (immutable)
STALE_RETRIES = 25
"""How often a write is recomputed when the account changed under it before giving up with
StoreUnavailable (503: fail closed). Each round at least one of the competing writers wins."""


def validate_account_id(account: object) -> str:
    """Account ids come from the platform; reject what cannot be one (InputError)."""
    if not isinstance(account, str):
        raise InputError(f"account id must be text, got {type(account).__name__}")
    if not account or len(account) > ACCOUNT_ID_MAX:
        raise InputError(f"account id must be 1 to {ACCOUNT_ID_MAX} characters")
    if not account.isprintable() or account != account.strip():
        raise InputError("account id must be printable, without surrounding spaces")
    return account


@dataclass(slots=True)
class Gate:
    """What the monitor knows before the content is read."""

    account: str | None
    state: AccountState
    at: datetime
    feature: Feature
    policy: Policy
    risk: float
    band: str | None
    halted: bool = False
    refusals: list[str] = field(default_factory=list)
    recent: list[Attempt] | None = None
    """The attempts of the probing window, read with the state when the account was blocked
    within it (None: not read; :meth:`AccountMonitor.finish` reads them if it needs them)."""


@dataclass(slots=True)
class Screened:
    """The prompt as the monitor sees it: its fingerprint and what the indexes know of it."""

    reading: PromptReading | None
    fingerprint: Fingerprint | None = None
    signals: list = field(default_factory=list)
    bank_hit: Hit | None = None
    reuse_hit: Hit | None = None


@dataclass(slots=True)
class Outcome:
    """The final verdict after the account's history and actions are applied."""

    verdict: Verdict
    categories: dict[str, float]
    reasons: list[str]
    action: AccountAction
    report: bool
    signals: list[Signal]
    probe: ProbeFinding | None = None
    write: AccountWrite | None = None
    """What to remember; the Guard applies it in the decision's transaction."""


@dataclass(slots=True)
class AccountWrite:
    """What one check leaves in the account store. The Guard runs it inside the transaction
    that records the decision (``Guard.record(..., account_write=...)``), so a decision and
    the account state it produced commit together or not at all, and the monitor adds no
    commit of its own. It may run twice if a group-commit batch is retried; it only writes
    through the connection it is given."""

    monitor: AccountMonitor
    at: datetime
    state: AccountState | None = None
    attempt: Attempt | None = None
    kind: str = "prompt"
    change: ActionChange | None = None
    blocked: Fingerprint | None = None
    state_changed: bool = True
    """False: ``state`` is the stored row unchanged, only the attempt is written."""
    indexed: int | None = None
    """The reuse-index entry's id written by the last run (None: none written)."""

    def __call__(self, conn: Connection) -> None:
        repo = self.monitor.repo
        if self.state is not None:
            self.indexed = repo.write(conn, self.state, self.at, self.attempt, self.kind,
                                      self.change, self.blocked, self.state_changed)  # fmt: skip
        elif self.blocked is not None:
            self.indexed = repo.insert_blocked(conn, "prompt", None, SM, self.blocked, self.at)

    def committed(self) -> None:
        """The transaction that ran this write has committed: the blocked prompt joins this
        worker's reuse index at once, without re-reading the store on the next check (other
        workers' entries still arrive with the periodic refresh). Called only after the
        commit, so a rolled-back check leaves nothing behind in memory either."""
        if self.indexed is not None and self.blocked is not None:
            owner = self.state.id if self.state is not None else None
            self.monitor.index_committed(self.indexed, self.blocked, owner)


class AccountMonitor:
    """One per Guard. Thread-safe: the in-memory indexes are guarded by a lock."""

    def __init__(
        self,
        repo: AccountRepository,
        policy: Policy,
        reader: PromptReader,
        refresh_seconds: float = 2.0,
    ) -> None:
        self.repo = repo
        self.policy = policy
        self.rules = policy.accounts
        self.reader = reader
        self.refresh_seconds = refresh_seconds
        m = self.rules.probing.min_containment_shingles
        self._reuse = LshIndex(m)
        self._bank = LshIndex(m)
        self._bank_meta: dict[int, datetime] = {}
        self._last_id = 0
        self._last_refresh = float("-inf")
        self._lock = threading.Lock()
        self._tightened: dict[str, Policy] = {}
        self._max_block_window = timedelta(
            hours=max((r.within_hours or 0 for r in self.rules.escalation), default=24) or 24
        )
        self._probe_window = timedelta(minutes=self.rules.probing.window_minutes)

    # --- before the policy ---------------------------------------------------------------
    def prefetch(self, accounts: Iterable[str | None]) -> None:
        """Read the accounts of a batch of checks at once (:meth:`AccountRepository.
        prefetch`); an id that is not valid is left to its own check, which refuses it."""
        valid = []
        for account in accounts:
            if account is None:
                continue
            try:
                valid.append(validate_account_id(account))
            except InputError:
                continue
        self.repo.prefetch(valid)

    def before(self, account: str | None, feature: Feature, at: datetime) -> Gate:
        """Load the account; say what blocks this request whatever its content."""
        _aware(at)
        if account is None:
            return Gate(None, AccountState(id=""), at, feature, self.policy, 0.0, None)
        validate_account_id(account)
        state, recent = self.repo.load_with_recent(account, at, self._probe_window)
        risk = state.risk_at_time(at, self.rules.risk.half_life_hours)
        band = self.rules.risk.band(risk)
        gate = Gate(
            account, state, at, feature, self._policy_for(band), risk, band.name if band else None
        )
        gate.recent = recent
        action = state.action_in_force(at)
        generation = feature in GENERATION_FEATURES
        if action is AccountAction.SUSPEND:
            gate.halted = True
            gate.refusals.append(f"account suspended ({state.action_reason or 'no reason given'})")
        elif action is AccountAction.COOLDOWN:
            until = state.action_until.isoformat() if state.action_until else "further notice"
            gate.refusals.append(f"account in cooldown until {until}")
        elif action is AccountAction.STEP_UP and generation:
            need = self.rules.age_assurance.step_up_requires
            gate.refusals.append(
                f"stronger verification required ({need}) before image generation resumes"
            )
        gate.refusals.extend(self.age_refusals(state, feature))
        return gate

    def age_refusals(self, state: AccountState, feature: Feature) -> list[str]:
        """Age-assurance rules for ``feature``: the minimum tier, and the minimum age."""
        aa = self.rules.age_assurance
        out: list[str] = []
        if state.age_tier is AgeTier.MINOR and feature in GENERATION_FEATURES:
            minimum = aa.minimum_age(state.jurisdiction)
            if state.age_years is None or state.age_years < minimum:
                where = f" in {state.jurisdiction}" if state.jurisdiction else ""
                out.append(f"account holder is under {minimum}{where}: image generation is closed")
        need = aa.minimum_tier(feature, state.jurisdiction)
        if not meets(state.age_tier, need):
            out.append(f"{feature} requires age assurance '{need}' (account: '{state.age_tier}')")
        return out

    # --- the content ---------------------------------------------------------------------
    def screen(self, account: str | None, reading: PromptReading | None) -> Screened:
        """Fingerprint the prompt ``account`` sent; look it up in the prompt bank and the
        reuse index (entries of ``account`` itself are not reuse)."""
        if reading is None:
            return Screened(None)
        return self._screen(account, reading, fingerprint(reading.normalised))

    def screen_all(self, sent: Sequence[tuple[str | None, PromptReading]]) -> list[Screened]:
        """:meth:`screen` of each ``(account, reading)`` of a batch of checks, their
        fingerprints computed together (one set of NumPy calls for the batch). The indexes
        change only when a batch has committed (``AccountWrite.committed``) or on the
        periodic refresh, so screening a batch's prompts ahead of its checks finds what
        screening each at its turn would."""
        fps = fingerprints([reading.normalised for _, reading in sent])
        return [self._screen(account, reading, fp)
                for (account, reading), fp in zip(sent, fps, strict=True)]  # fmt: skip

    def _screen(self, account: str | None, reading: PromptReading, fp: Fingerprint) -> Screened:
        signals = list(reading.signals)
        self._refresh()
        with self._lock:
            bank = self._bank.near(fp, self.rules.prompt_bank.similarity)
            nearby = self._reuse.near(fp, self.rules.reuse.similarity)
        reuse = [h for h in nearby if account is None or h.owner != account]
        bank_hit = bank[0] if bank else None
        reuse_hit = reuse[0] if reuse else None
        if bank_hit is not None:
            signals.append(
                Signal(
                    "prompt_bank",
                    "bank_match",
                    bank_hit.similarity,
                    {
                        "similarity": round(bank_hit.similarity, 3),
                        "learned_at": self._bank_meta[bank_hit.key].isoformat(),
                    },
                )
            )
        if reuse_hit is not None:
            signals.append(
                Signal(
                    DETECTOR,
                    "blocked_prompt_reuse",
                    reuse_hit.similarity,
                    {
                        "similarity": round(reuse_hit.similarity, 3),
                        "other_accounts": len({h.owner for h in reuse}),
                    },
                )
            )
        return Screened(reading, fp, signals, bank_hit, reuse_hit)

    # --- after the policy ----------------------------------------------------------------
    def finish(self, gate: Gate, screened: Screened, judgement: Judgement) -> Outcome:
        """Apply the bank, the ladder and the actions in force; remember the attempt."""
        at = gate.at
        categories = dict(judgement.categories)
        reasons = list(judgement.reasons)
        content = judgement.verdict
        if screened.bank_hit is not None:
            content = Verdict.BLOCK
            categories[SM] = max(categories.get(SM, 0.0), screened.bank_hit.similarity)
            reasons.insert(
                0,
                "near-duplicate of a prompt whose generated image was blocked as sexual_minors "
                f"(similarity {screened.bank_hit.similarity:.2f})",
            )
        blocked_category = self._blocked_category(content, categories, gate.policy)
        coded = any(
            s.kind == "coded_abuse" and s.score >= gate.policy.thresholds.block
            for s in screened.signals
        )
        state = gate.state
        probe: ProbeFinding | None = None
        recent: list[Attempt] = []
        if gate.account is not None and screened.reading is not None:
            if state.recently_blocked(at, self._probe_window):
                recent = gate.recent
                if recent is None:
                    recent = self.repo.recent_attempts(gate.account, at - self._probe_window)
            # nothing remembered in the window (the usual case): no attempt to be a probe of,
            # which is find_probe's own answer, without computing its arguments
            probe = _NOT_A_PROBE if not recent else find_probe(
                screened.fingerprint,
                self._concern(content, blocked_category, categories, gate.policy),
                screened.reading.language,
                _obfuscation(screened.signals),
                recent,
                at,
                self.rules.probing,
            )
        probing = bool(
            probe
            and probe.probe
            and count_probes(recent, at, self.rules.probing) + 1 >= self.rules.probing.min_probes
        )
        events = Events(
            blocked_category=blocked_category,
            probing=probing,
            coded_abuse=coded,
            reuse=screened.reuse_hit is not None,
            bank_match=screened.bank_hit is not None,
        )
        escalation = Escalation(state.action_in_force(at), state.action_until, False)
        if gate.account is not None:
            block_times: dict[str, list[datetime]] = {}
            if blocked_category is not None:
                # last_block_at is written with every blocked attempt: without it the account
                # has no earlier block to count, and its first block costs no query
                if state.last_block_at is not None:
                    block_times = self.repo.block_times(
                        gate.account, at - self._max_block_window
                    )
                block_times.setdefault(blocked_category, []).append(at)
            escalation = escalate(state, events, block_times, self.rules.escalation, at)
        verdict, reasons = self._enforce(gate, content, reasons, escalation)
        if escalation.reasons:
            reasons.append("account: " + "; ".join(escalation.reasons))
        outcome = Outcome(
            verdict,
            {k: v for k, v in categories.items() if v > 0},
            reasons,
            escalation.action,
            escalation.report,
            screened.signals,
            probe,
        )
        outcome.write = self._remember(
            gate, screened, content, blocked_category, events, escalation, probe, verdict
        )
        return outcome

    def _enforce(
        self, gate: Gate, content: Verdict, reasons: list[str], esc: Escalation
    ) -> tuple[Verdict, list[str]]:
        refusals = list(gate.refusals)
        blocking = esc.action in (AccountAction.COOLDOWN, AccountAction.SUSPEND) or (
            esc.action is AccountAction.STEP_UP and gate.feature in GENERATION_FEATURES
        )
        if not gate.halted and not refusals and esc.changed and blocking:
            # an action set by this very attempt applies to it at once
            refusals.append(f"account action '{esc.action}' now in force")
        if not refusals:
            return content, reasons
        return Verdict.BLOCK, [*refusals, *reasons]

    def _concern(
        self, content: Verdict, blocked: str | None, categories: dict[str, float], policy: Policy
    ) -> Verdict:
        """The verdict as far as the probing categories go."""
        watched = self.rules.probing.categories
        if blocked is not None and blocked in watched:
            return Verdict.BLOCK
        if content is not Verdict.ALLOW and any(
            categories.get(c.value, 0.0) >= policy.thresholds.review for c in watched
        ):
            return Verdict.REVIEW
        return Verdict.ALLOW

    def _blocked_category(
        self, content: Verdict, categories: dict[str, float], policy: Policy
    ) -> str | None:
        if content is not Verdict.BLOCK:
            return None
        if categories.get(SM, 0.0) >= policy.thresholds.block:
            return SM
        best = max(categories.items(), key=lambda kv: kv[1], default=None)
        return best[0] if best and best[1] > 0 else None

    def _remember(
        self,
        gate: Gate,
        screened: Screened,
        content: Verdict,
        blocked_category: str | None,
        events: Events,
        esc: Escalation,
        probe: ProbeFinding | None,
        verdict: Verdict,
    ) -> AccountWrite | None:
        """What this check leaves in the store (None: nothing worth keeping)."""
        at = gate.at
        fp = screened.fingerprint
        index_fp = None
        if (
            blocked_category == SM
            and fp is not None
            and screened.bank_hit is None
            and not self._indexed_for(gate.account, fp)
        ):
            index_fp = fp
        if gate.account is None or gate.halted:
            return AccountWrite(self, at, blocked=index_fp) if index_fp is not None else None
        state = gate.state
        worth = (
            events.any()
            or content is not Verdict.ALLOW
            or state.recently_blocked(at, self._probe_window)
            or esc.changed
        )
        if not worth:
            return None
        r = self.rules.risk
        incs = []
        if blocked_category:
            incs.append(r.block)
        elif content is Verdict.REVIEW:
            incs.append(r.review)
        for flag, inc in (
            (events.probing, r.probing),
            (events.reuse, r.reuse),
            (events.coded_abuse, r.coded_abuse),
            (events.bank_match, r.bank_match),
        ):
            if flag:
                incs.append(inc)
        # every change gathered first, then one copy (copying the state is not free)
        changes: dict[str, object] = {}
        if incs:
            changes["risk"] = state.risk_after(at, r.half_life_hours, *incs)
            changes["risk_at"] = at
        change = None
        if blocked_category:
            strikes = dict(state.strikes)
            strikes[blocked_category] = strikes.get(blocked_category, 0) + 1
            changes["strikes"], changes["last_block_at"] = strikes, at
        if esc.changed:
            reason = "; ".join(esc.reasons) or "escalation"
            fresh = esc.action is not state.action_in_force(at)
            changes.update(
                action=esc.action,
                action_since=at if fresh else state.action_since,
                action_until=esc.until,
                action_reason=reason,
                report=state.report or esc.report,
            )
            change = ActionChange(esc.action, esc.until, reason, "ladder", esc.report)
        new = replace(state, **changes) if changes else state  # type: ignore[arg-type]
        attempt = Attempt(
            at=at,
            verdict=verdict.value,
            content_verdict=content.value,
            blocked_category=blocked_category,
            language=screened.reading.language if screened.reading else None,
            obfuscation=_obfuscation(screened.signals),
            fingerprint=fp,
            probe=bool(probe and probe.probe),
        )
        changed = new is not state or not state.exists
        return AccountWrite(self, at, new, attempt, gate.feature.value, change, index_fp, changed)

    # --- image flows ---------------------------------------------------------------------
    def image_gate(self, gate: Gate, signals: list[Signal]) -> None:
        """An edit's source photo shows a person (a face was found): the age rules of
        ``edit_real_person`` apply on top of those of the plain edit. Without an account
        there is no age to assure (the platform did not say who asks), so nothing is added."""
        if gate.account is not None and any(s.kind in ("face", "face_age") for s in signals):
            gate.feature = Feature.EDIT_REAL_PERSON
            gate.refusals.extend(
                r for r in self.age_refusals(gate.state, gate.feature) if r not in gate.refusals
            )

    def settle_image(
        self,
        gate: Gate,
        judgement: Judgement,
        prompt_signals: Sequence[Signal] = (),
        learn_prompt: str | None = None,
    ) -> tuple[Judgement, AccountAction, AccountWrite | None]:
        """An image judgement after the account's actions in force and the ladder (a block
        for ``sexual_minors`` is a strike like a prompt's): the judgement to wrap into the
        decision (its ``report`` includes the ladder's flag), the account action and the
        write for ``Guard.record(..., account_write=...)``.

        ``learn_prompt``: the prompt that generated this output; when the output itself is
        blocked as ``sexual_minors`` it joins the learned prompt bank for every account."""
        if (
            learn_prompt
            and judgement.verdict is Verdict.BLOCK
            and judgement.categories.get(SM, 0.0) >= gate.policy.thresholds.block
        ):
            self.learn_output_block(learn_prompt, gate.account, gate.at)
        out = self.finish(gate, Screened(None, signals=list(prompt_signals)), judgement)
        settled = Judgement(
            out.verdict, out.categories, out.reasons, judgement.report or out.report
        )
        return settled, out.action, out.write

    # --- the indexes ---------------------------------------------------------------------
    def _indexed_for(self, account: str | None, fp: Fingerprint) -> bool:
        """The same account repeating itself adds nothing to the shared reuse index.

        Asks about this account's entries only: a near() search is cut at its best 32 hits,
        and with more near-identical entries of other accounts than that (a popular blocked
        prompt) the account's own would be missed and the same prompt indexed again and again.
        """
        with self._lock:
            return self._reuse.has_near(fp, account, _NEAR_IDENTICAL)

    def index_committed(self, key: int, fp: Fingerprint, owner: str | None) -> None:
        """A committed reuse-index entry of this worker's own checks (see
        :meth:`AccountWrite.committed`); a later refresh that reads it again skips it."""
        with self._lock:
            self._reuse.add(key, fp, owner)
            self._caught_up(key)

    def _caught_up(self, key: int) -> None:
        """``key`` is in memory: when it is the next id after everything read so far, the
        periodic refresh need not read it back from the store (decoding a few thousand
        entries one worker wrote itself took ~10 ms in one check). After a gap (another
        worker's entry, not yet seen) the refresh reads from the gap as before."""
        if key == self._last_id + 1:
            self._last_id = key

    def learn_output_block(
        self, prompt: str, account: str | None, at: datetime, category: str = SM
    ) -> int | None:
        """A generation's output was blocked: make its prompt a blocked pattern for everyone.

        Call with the prompt that produced the blocked image (the output flow does this).
        Returns the bank entry's id, or None when a near-identical pattern is already banked
        or the category is not ``sexual_minors`` (only that category is learned).
        """
        _aware(at)
        if category != SM:
            return None
        if account is not None:
            validate_account_id(account)
        fp = fingerprint(self.reader.read(prompt).normalised)
        self._refresh(force=True)
        with self._lock:
            if self._bank.near(fp, _NEAR_IDENTICAL):
                return None
        key = self.repo.add_blocked_prompt("output", account, category, fp, at)
        with self._lock:
            self._bank.add(key, fp, account)
            self._bank_meta[key] = at
            self._caught_up(key)
        return key

    def _refresh(self, force: bool = False) -> None:
        """Pick up entries other workers added (at most every ``refresh_seconds``)."""
        now = time.monotonic()
        if not force and now - self._last_refresh < self.refresh_seconds:
            return
        self._last_refresh = now
        rows = self.repo.blocked_prompts(self._last_id)
        with self._lock:
            for row in rows:
                if row.source == "output":
                    self._bank.add(row.id, row.fingerprint, row.account_id)
                    self._bank_meta[row.id] = row.at
                else:
                    self._reuse.add(row.id, row.fingerprint, row.account_id)
                self._last_id = max(self._last_id, row.id)

    # --- administration ------------------------------------------------------------------
    def record_verification(
        self, account: str, v: Verification, at: datetime, *, actor: str | None = None
    ) -> AccountState:
        """Record an age-assurance result; a strong enough one lifts a ``step_up``.

        ``actor`` (the operator or API key that recorded it) puts the recording in the audit
        log: tier, method, provider, jurisdiction; not the age or the provider's reference.
        """
        validate_account_id(account)
        _aware(at)
        _aware(v.verified_at)

        def attempt() -> AccountState:
            state = self.repo.load(account)
            new = state
            if _replaces(state.age_tier, v.tier):
                new = replace(
                    new,
                    age_tier=v.tier,
                    age_method=v.method,
                    age_years=v.age_years,
                    age_verified_at=v.verified_at,
                )
            if v.jurisdiction:
                new = replace(new, jurisdiction=v.jurisdiction)
            change = None
            need = self.rules.age_assurance.step_up_requires
            if (
                state.action_in_force(at) is AccountAction.STEP_UP
                and meets(v.tier, need)
                and (state.action_since is None or v.verified_at >= state.action_since)
            ):
                reason = f"step-up satisfied by {v.tier} verification ({v.method})"
                new = replace(
                    new, action=AccountAction.NONE, action_until=None, action_reason=reason
                )
                change = ActionChange(AccountAction.NONE, None, reason, "verification")
            admin = None
            if actor is not None:
                details = {"tier": v.tier.value, "method": v.method, "provider": v.provider,
                           "jurisdiction": v.jurisdiction,
                           "verified_at": v.verified_at.isoformat(),
                           "lifted_step_up": change is not None}  # fmt: skip
                admin = AdminAction(actor, "account.verification", account, details)
            self.repo.add_verification(new, v, at, change, admin)
            return new

        return self._until_written(attempt)

    def set_action(
        self,
        account: str,
        action: AccountAction,
        reason: str,
        actor: str,
        at: datetime,
        report: bool = False,
        until: datetime | None = None,
    ) -> AccountState:
        """An administrator's action: ``none`` lifts whatever is in force. Written to the audit
        log (action, reason, report flag, end) in the same transaction as the change."""
        validate_account_id(account)
        _aware(at)
        if not reason or not reason.strip():
            raise InputError("a reason is required")
        if len(reason) > 500:
            raise InputError("reason must be at most 500 characters")
        def attempt() -> AccountState:
            state = self.repo.load(account)
            new = replace(
                state,
                action=action,
                action_since=at,
                action_until=until,
                action_reason=reason.strip(),
                report=state.report or report,
            )
            name = "account.lift" if action is AccountAction.NONE else f"account.{action.value}"
            details = {"reason": reason.strip(), "report": report,
                       "until": until.isoformat() if until else None}  # fmt: skip
            self.repo.record(
                new,
                at,
                change=ActionChange(action, until, reason.strip(), actor, report),
                admin=AdminAction(actor, name, account, details),
            )
            return new

        return self._until_written(attempt)

    @staticmethod
    def _until_written(attempt: Callable[[], AccountState]) -> AccountState:
        """Run ``attempt`` (read the state, change it, write it) until its write was not
        stale (:class:`StaleAccountState`: a check or another operator wrote the account
        between the read and the write); the state as now stored."""
        for _ in range(STALE_RETRIES):
            try:
                new = attempt()
            except StaleAccountState:
                continue
            return replace(new, exists=True, version=new.version + 1)
        raise StoreUnavailable("the account kept changing while it was being updated; retry")

    def describe(self, account: str, at: datetime) -> dict[str, object]:
        """The account as an administrator sees it, with verifications and action history."""
        validate_account_id(account)
        state = self.repo.load(account)
        out = state.to_dict(at, self.rules.risk.half_life_hours)
        band = self.rules.risk.band(out["risk"])  # type: ignore[arg-type]
        out["risk_band"] = band.name if band else None
        out["verifications"] = [v.to_dict() for v in self.repo.verifications(account)]
        out["actions"] = self.repo.actions(account)
        return out

    # --- internals -----------------------------------------------------------------------
    def _policy_for(self, band) -> Policy:  # type: ignore[no-untyped-def]
        """The policy with the band's thresholds (never looser than the policy's own)."""
        if band is None:
            return self.policy
        cached = self._tightened.get(band.name)
        if cached is None:
            base = self.policy.thresholds
            t = Thresholds(
                block=min(base.block, band.thresholds.block),
                review=min(base.review, band.thresholds.review),
            )
            cached = self.policy.model_copy(update={"thresholds": t})
            self._tightened[band.name] = cached
        return cached


_TIER_STRENGTH = {
    AgeTier.UNKNOWN: 0,
    AgeTier.SELF_DECLARED: 1,
    AgeTier.ESTIMATED: 2,
    AgeTier.MINOR: 2,
    AgeTier.VERIFIED_ADULT: 3,
}


def _replaces(current: AgeTier, new: AgeTier) -> bool:
    """A newer result replaces the tier unless it carries weaker assurance."""
    return _TIER_STRENGTH[new] >= _TIER_STRENGTH[current]


def _obfuscation(signals: list[Signal]) -> int:
    total = 0
    for s in signals:
        if s.kind == "obfuscation":
            total += sum(int(v) for v in s.evidence.get("counts", {}).values())
    return total


def _aware(at: datetime) -> None:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InputError("times must be timezone-aware datetimes")
