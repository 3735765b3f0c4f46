"""The Guard: the flows of DESIGN.md, orchestration only.

It owns no judgement of its own: detectors and the prompt reader return signals, the policy
turns them into a verdict, the store records the decision. Keeping it thin means every rule
can be tested without the Guard, and every flow reads top to bottom in a few lines.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from tutela.config import Settings
from tutela.decision import CheckKind, Decision
from tutela.policy import Policy
from tutela.text.reader import PromptReader, PromptReading


class Guard:
    """Tutela's public entry point. Build it with :meth:`open`."""

    def __init__(self, settings: Settings, policy: Policy, reader: PromptReader) -> None:
        self.settings = settings
        self.policy = policy
        self.reader = reader

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
        return cls(settings, policy, reader)

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
        """Check a generation prompt. Raises :class:`tutela.errors.PromptError` on bad input."""
        reading = self.reader.read(text)
        judgement = self.policy.judge_prompt(reading.signals)
        decision = Decision(
            verdict=judgement.verdict,
            categories=judgement.categories,
            reasons=judgement.reasons,
            signals=reading.signals,
            kind=CheckKind.PROMPT,
            account=account,
            language=reading.language or locale,
        )
        if at is not None:
            decision.created_at = at
        return decision
