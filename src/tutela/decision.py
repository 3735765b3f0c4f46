"""The vocabulary every part of Tutela speaks: verdicts, categories, signals, decisions.

One module owns these words so that the prompt reader, the image detectors, the policy, the
store, the API and the reports cannot drift apart. Everything else imports from here.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from tutela.instants import isoformat


class Verdict(StrEnum):
    """What happens to the request. Ordered by severity (see :func:`strictest`)."""

    ALLOW = "allow"
    REVIEW = "review"
    BLOCK = "block"


class Category(StrEnum):
    """Keys of :attr:`Decision.categories`; each maps to a score in 0..1."""

    SEXUAL_MINORS = "sexual_minors"
    """Sexual content involving a minor. Always blocked; no policy can allow it."""
    SEXUALISED_REAL_PERSON = "sexualised_real_person"
    """Sexualising edit of a real person's photo (non-consensual intimate imagery)."""
    SEXUAL_ADULT = "sexual_adult"
    """Adult sexual content; the platform's policy decides."""
    MINOR_PRESENT = "minor_present"
    """A child appears, innocently. Allowed, but it makes output checks strict."""


class AccountAction(StrEnum):
    """What the platform must do with the account, ordered by severity."""

    NONE = "none"
    WARN = "warn"
    COOLDOWN = "cooldown"
    STEP_UP = "step_up"
    SUSPEND = "suspend"


class CheckKind(StrEnum):
    """Which flow produced a decision."""

    PROMPT = "prompt"
    EDIT = "edit"
    OUTPUT = "output"
    UPLOAD = "upload"


_VERDICT_RANK = {Verdict.ALLOW: 0, Verdict.REVIEW: 1, Verdict.BLOCK: 2}
_ACTION_RANK = {a: i for i, a in enumerate(AccountAction)}


def strictest(*verdicts: Verdict) -> Verdict:
    """The most severe of ``verdicts`` (``allow`` when none are given)."""
    return max(verdicts, key=_VERDICT_RANK.__getitem__, default=Verdict.ALLOW)


def strictest_action(*actions: AccountAction) -> AccountAction:
    """The most severe of ``actions`` (``none`` when none are given)."""
    return max(actions, key=_ACTION_RANK.__getitem__, default=AccountAction.NONE)


@dataclass(frozen=True, slots=True)
class Signal:
    """One detector's finding, with the evidence a reviewer needs to check it.

    Detectors only ever return signals; they never decide. ``kind`` says what was found
    (``minor``, ``sexual``, ``coded_abuse``, ``nudity``, ``face_age``, ``hash_match``,
    ``obfuscation``, ``detector_error`` ...), ``score`` how strongly (0..1), and ``evidence``
    is a JSON-serialisable mapping (matched terms, boxes, hash distances, counts).
    """

    detector: str
    kind: str
    score: float
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "kind": self.kind,
            "score": round(self.score, 4),
            "evidence": self.evidence,
        }


def new_decision_id() -> str:
    """A sortable, unguessable id: ``dec_`` + UUIDv7-like hex (time prefix + random)."""
    return f"dec_{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


@dataclass(slots=True)
class Decision:
    """The answer to one check: verdict, scored categories, readable reasons, the evidence.

    ``id`` is the decision's id in the audit log; ``report`` flags the case for the
    reporting queue. ``account_action`` is what the escalation ladder asks of the platform.
    """

    verdict: Verdict
    categories: dict[str, float]
    reasons: list[str]
    signals: list[Signal]
    kind: CheckKind = CheckKind.PROMPT
    account: str | None = None
    account_action: AccountAction = AccountAction.NONE
    report: bool = False
    id: str = field(default_factory=new_decision_id)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    language: str | None = None

    @property
    def blocked(self) -> bool:
        return self.verdict is Verdict.BLOCK

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW

    def top_category(self) -> str | None:
        """The highest-scoring category, or None when nothing scored above zero."""
        best = max(self.categories.items(), key=lambda kv: kv[1], default=None)
        return best[0] if best and best[1] > 0 else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping: the shape used by the CLI, the API and the store."""
        return {
            "id": self.id,
            "kind": str(self.kind),
            "verdict": str(self.verdict),
            "categories": {k: round(v, 4) for k, v in self.categories.items()},
            "reasons": list(self.reasons),
            "signals": [s.to_dict() for s in self.signals],
            "account": self.account,
            "account_action": str(self.account_action),
            "report": self.report,
            "language": self.language,
            "created_at": isoformat(self.created_at),
        }
