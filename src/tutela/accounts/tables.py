"""The accounts area's tables, declared on the shared :class:`tutela.store.db.Base`.

- ``account_state``: one row per account the guard has had reason to remember (an account
  with nothing but allowed prompts and no verification has no row: nothing to keep).
- ``account_attempts``: the attempts worth remembering (blocked or reviewed, and every
  attempt within the probing window after a block), as fingerprints, never as text.
- ``account_verifications``: age-assurance results recorded by the platform's provider.
- ``account_actions``: the history of actions set by the ladder or by an administrator.
- ``blocked_prompts``: fingerprints of prompts blocked as ``sexual_minors`` (source
  ``prompt``: the cross-account reuse index) and of prompts whose output was blocked
  (source ``output``: the learned prompt bank).

Times are stored as UTC; :class:`UtcDateTime` gives them back timezone-aware on SQLite too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tutela.store.db import Base

ACCOUNT_ID_MAX = 256


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes in, timezone-aware UTC datetimes out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Tutela stores timezone-aware times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class AccountRow(Base):
    __tablename__ = "account_state"

    id: Mapped[str] = mapped_column(String(ACCOUNT_ID_MAX), primary_key=True)
    age_tier: Mapped[str] = mapped_column(String(20), default="unknown")
    age_method: Mapped[str | None] = mapped_column(String(100))
    age_years: Mapped[int | None] = mapped_column(Integer)
    age_verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    jurisdiction: Mapped[str | None] = mapped_column(String(2))
    risk: Mapped[float] = mapped_column(Float, default=0.0)
    risk_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    strikes: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    action: Mapped[str] = mapped_column(String(20), default="none")
    action_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    action_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    action_reason: Mapped[str | None] = mapped_column(String(500))
    report: Mapped[bool] = mapped_column(Boolean, default=False)
    last_block_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    """Bumped by every write; a write names the version it read (migration 0006)."""


class AttemptRow(Base):
    __tablename__ = "account_attempts"
    __table_args__ = (Index("ix_account_attempts_account_at", "account_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("account_state.id", ondelete="CASCADE"), nullable=False
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    kind: Mapped[str] = mapped_column(String(20))
    verdict: Mapped[str] = mapped_column(String(10))
    blocked_category: Mapped[str | None] = mapped_column(String(40))
    content_verdict: Mapped[str] = mapped_column(String(10))
    language: Mapped[str | None] = mapped_column(String(16))
    obfuscation: Mapped[int] = mapped_column(Integer, default=0)
    fingerprint: Mapped[bytes | None] = mapped_column(LargeBinary)
    shingles: Mapped[int] = mapped_column(Integer, default=0)
    probe: Mapped[bool] = mapped_column(Boolean, default=False)


class VerificationRow(Base):
    __tablename__ = "account_verifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("account_state.id", ondelete="CASCADE"), nullable=False, index=True
    )
    tier: Mapped[str] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(100))
    provider: Mapped[str | None] = mapped_column(String(200))
    age_years: Mapped[int | None] = mapped_column(Integer)
    jurisdiction: Mapped[str | None] = mapped_column(String(2))
    reference: Mapped[str | None] = mapped_column(String(200))
    verified_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ActionRow(Base):
    __tablename__ = "account_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("account_state.id", ondelete="CASCADE"), nullable=False, index=True
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    action: Mapped[str] = mapped_column(String(20))
    until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(200))
    report: Mapped[bool] = mapped_column(Boolean, default=False)


class BlockedPromptRow(Base):
    __tablename__ = "blocked_prompts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(10), index=True)
    account_id: Mapped[str | None] = mapped_column(String(ACCOUNT_ID_MAX))
    category: Mapped[str] = mapped_column(String(40))
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary)
    shingles: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


TABLES = [
    AccountRow.__table__,
    AttemptRow.__table__,
    VerificationRow.__table__,
    ActionRow.__table__,
    BlockedPromptRow.__table__,
]
