"""Account state as plain values: what the monitor reads before a check and writes after.

Kept apart from the tables so the ladder and the enforcement rules can be unit-tested on
values, and so the repository is the only place that knows about SQL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from tutela.accounts.fingerprint import Fingerprint
from tutela.accounts.tiers import AgeTier
from tutela.decision import AccountAction


@dataclass(frozen=True, slots=True)
class Verification:
    """One age-assurance result from the platform's provider."""

    tier: AgeTier
    method: str
    verified_at: datetime
    provider: str | None = None
    age_years: int | None = None
    jurisdiction: str | None = None
    reference: str | None = None
    recorded_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier": str(self.tier),
            "method": self.method,
            "verified_at": self.verified_at.isoformat(),
            "provider": self.provider,
            "age_years": self.age_years,
            "jurisdiction": self.jurisdiction,
            "reference": self.reference,
            "recorded_at": self.recorded_at.isoformat() if self.recorded_at else None,
        }


@dataclass(frozen=True, slots=True)
class Attempt:
    """One remembered attempt: fingerprint and what became of it, never the text."""

    at: datetime
    verdict: str
    content_verdict: str
    blocked_category: str | None
    language: str | None
    obfuscation: int
    fingerprint: Fingerprint | None
    probe: bool = False


@dataclass(frozen=True, slots=True)
class AccountState:
    """Everything remembered of one account. ``exists`` is False for a never-seen account."""

    id: str
    exists: bool = False
    age_tier: AgeTier = AgeTier.UNKNOWN
    age_method: str | None = None
    age_years: int | None = None
    age_verified_at: datetime | None = None
    jurisdiction: str | None = None
    risk: float = 0.0
    risk_at: datetime | None = None
    strikes: dict[str, int] = field(default_factory=dict)
    action: AccountAction = AccountAction.NONE
    action_since: datetime | None = None
    action_until: datetime | None = None
    action_reason: str | None = None
    report: bool = False
    last_block_at: datetime | None = None
    version: int = 0
    """The stored row's version when read (0: no row); a write names it (repository)."""

    def risk_at_time(self, at: datetime, half_life_hours: float) -> float:
        """The risk score decayed to ``at`` (it halves every ``half_life_hours``)."""
        if self.risk <= 0 or self.risk_at is None:
            return 0.0
        hours = max(0.0, (at - self.risk_at).total_seconds() / 3600)
        return self.risk * math.pow(0.5, hours / half_life_hours)

    def action_in_force(self, at: datetime) -> AccountAction:
        """The action at ``at``: timed actions (warn, cooldown) lapse at ``action_until``."""
        if self.action is AccountAction.NONE:
            return AccountAction.NONE
        if self.action_until is not None and at >= self.action_until:
            return AccountAction.NONE
        return self.action

    def risk_after(self, at: datetime, half_life_hours: float, *increments: float) -> float:
        """The decayed risk with each increment combined into it: 1 - (1-r)(1-inc)."""
        r = self.risk_at_time(at, half_life_hours)
        for inc in increments:
            r = 1.0 - (1.0 - r) * (1.0 - inc)
        return min(1.0, r)

    def with_risk(self, at: datetime, half_life_hours: float, *increments: float) -> AccountState:
        """A copy with :meth:`risk_after` as its risk, measured at ``at``."""
        return replace(self, risk=self.risk_after(at, half_life_hours, *increments), risk_at=at)

    def recently_blocked(self, at: datetime, window: timedelta) -> bool:
        return self.last_block_at is not None and at - self.last_block_at <= window

    def to_dict(self, at: datetime, half_life_hours: float) -> dict[str, Any]:
        """The account as an administrator sees it (API and command line)."""
        in_force = self.action_in_force(at)
        return {
            "id": self.id,
            "known": self.exists,
            "age": {
                "tier": str(self.age_tier),
                "method": self.age_method,
                "age_years": self.age_years,
                "verified_at": _iso(self.age_verified_at),
                "jurisdiction": self.jurisdiction,
            },
            "risk": round(self.risk_at_time(at, half_life_hours), 4),
            "strikes": dict(self.strikes),
            "action": {
                "current": str(in_force),
                "since": _iso(self.action_since) if in_force is not AccountAction.NONE else None,
                "until": _iso(self.action_until) if in_force is not AccountAction.NONE else None,
                "reason": self.action_reason if in_force is not AccountAction.NONE else None,
            },
            "report": self.report,
            "last_block_at": _iso(self.last_block_at),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
