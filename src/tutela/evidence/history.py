"""Decisions as the audit log remembers them, each with the reviews that followed.

Reports read the log, not the decisions table: the log is the record that cannot be quietly
edited, so a transparency report or a statement of reasons built from it is backed by the
same proofs an auditor can check.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tutela.evidence.log import AuditLog, EntryKind


@dataclass(frozen=True, slots=True)
class Review:
    at: datetime
    reviewer: str | None
    outcome: str  # "confirm" | "overturn"


@dataclass(slots=True)
class Case:
    """One decision (its logged JSON) and what reviewers later did with it."""

    seq: int
    at: datetime
    decision: dict[str, Any]
    reviews: list[Review] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.decision["id"])

    @property
    def verdict(self) -> str:
        return str(self.decision["verdict"])

    @property
    def overturned(self) -> bool:
        """The latest review overturned the automated decision."""
        return bool(self.reviews) and self.reviews[-1].outcome == "overturn"

    @property
    def manual(self) -> bool:
        """A person reviewed it (so it is not a fully automated decision)."""
        return bool(self.reviews)

    def top_category(self) -> str | None:
        cats = self.decision.get("categories") or {}
        best = max(cats.items(), key=lambda kv: kv[1], default=None)
        return best[0] if best and best[1] > 0 else None


def cases(
    log: AuditLog, since: datetime | None = None, until: datetime | None = None
) -> Iterator[Case]:
    """Decisions logged in ``[since, until)``, with every review logged for them (ever)."""
    found: dict[str, Case] = {}
    for e in log.entries(since=since, until=until, kinds=[EntryKind.DECISION]):
        found[str(e.subject)] = Case(e.seq, e.at, e.data)
    if not found:
        return
    for e in log.entries(since=since, kinds=[EntryKind.REVIEW]):
        case = found.get(str(e.subject))
        if case is not None:
            case.reviews.append(Review(e.at, e.actor, str(e.data.get("outcome"))))
    yield from found.values()
