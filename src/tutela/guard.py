"""The Guard: the flows of DESIGN.md, orchestration only.

It owns no judgement of its own: detectors and the prompt reader return signals, the policy
turns them into a verdict, the store records the decision. Keeping it thin means every rule
can be tested without the Guard, and every flow reads top to bottom in a few lines.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tutela.accounts.monitor import AccountMonitor
from tutela.accounts.repository import AccountRepository
from tutela.accounts.tiers import Feature
from tutela.config import Settings
from tutela.decision import CheckKind, Decision
from tutela.policy import Policy
from tutela.store.database import Store
from tutela.store.decisions import decision_row
from tutela.text.reader import PromptReader, PromptReading

DecisionCallback = Callable[[Decision, Session], None]
"""Called with each decision and the open session of the transaction that records it."""


class Guard:
    """Tutela's public entry point. Build it with :meth:`open`."""

    def __init__(
        self,
        settings: Settings,
        policy: Policy,
        reader: PromptReader,
        store: Store | None = None,
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.reader = reader
        self.store = store or Store.open(settings.effective_database_url)
        self._decision_callbacks: list[DecisionCallback] = []
        self.accounts = AccountMonitor(
            AccountRepository(self.store.engine, self.store.ensure_schema), policy, reader
        )
        # every recorded decision becomes a leaf of the tamper-evident audit log (evidence/)
        from tutela.evidence.service import attach

        self.audit = attach(self)

    @classmethod
    def open(
        cls,
        data_dir: Path | str | None = None,
        config: Path | str | None = None,
        **overrides: Any,
    ) -> Guard:
        """Open a guard on embedded defaults, or on ``config`` (a YAML file) and overrides.

        ``data_dir`` gives an isolated store (one per evaluation run, one per test).
        """
        if data_dir is not None:
            overrides["data_dir"] = Path(data_dir)
        settings = Settings.load(config, **overrides)
        policy = Policy.load(settings.policy_file)
        reader = PromptReader(max_chars=settings.max_prompt_chars)
        return cls(settings, policy, reader, Store.open(settings.effective_database_url))

    # --- recording ---------------------------------------------------------------------------
    def on_decision(self, callback: DecisionCallback) -> DecisionCallback:
        """Run ``callback(decision, session)`` for every decision this Guard records.

        It runs inside the transaction that stores the decision, after the insert and before
        the commit, in the thread that asked for the check, so whatever it writes through
        ``session`` (an evidence-log entry, account state) commits atomically with the
        decision. If it raises, nothing is committed and the check raises: no answer goes
        out whose record is incomplete. Keep callbacks short; they sit on the request path.
        Usable as a decorator; returns ``callback``.
        """
        self._decision_callbacks.append(callback)
        return callback

    def record(self, decision: Decision, *, prompt: str | None = None) -> None:
        """Store ``decision`` (and run the callbacks) before anyone sees it.

        Raises :class:`tutela.errors.StoreUnavailable` when the database cannot be used, so
        callers fail closed instead of answering with an unrecorded decision.
        """
        row = decision_row(
            decision,
            prompt=prompt,
            allowed_prompt_days=self.policy.retention.allowed_prompt_days,
        )
        with self.store.transaction() as session:
            self.store.decisions.add(session, row)
            for callback in self._decision_callbacks:
                callback(decision, session)

    def read_prompt(self, text: str) -> PromptReading:
        """The prompt's signals without a decision (for evaluation and debugging)."""
        return self.reader.read(text)

    def check_prompt(
        self,
        text: str,
        account: str | None = None,
        *,
        locale: str | None = None,
        at: datetime | None = None,
    ) -> Decision:
        """Check a generation prompt. Raises :class:`tutela.errors.PromptError` on bad input.

        ``at`` (timezone-aware) replays a recorded session with its own timestamps.
        """
        at = at or datetime.now(UTC)
        self.reader.validate(text)
        gate = self.accounts.before(account, Feature.TEXT_TO_IMAGE, at)
        reading = None if gate.halted else self.reader.read(text)  # suspended: no detector runs
        screened = self.accounts.screen(gate, reading)
        outcome = self.accounts.finish(gate, screened, gate.policy.judge_prompt(screened.signals))
        decision = Decision(
            verdict=outcome.verdict,
            categories=outcome.categories,
            reasons=outcome.reasons,
            signals=outcome.signals,
            kind=CheckKind.PROMPT,
            account=account,
            account_action=outcome.action,
            report=outcome.report,
            language=(reading.language if reading else None) or locale,
            created_at=at,
        )
        self.record(decision, prompt=text)
        return decision
