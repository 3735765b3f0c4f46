"""Hash banks in the database: the tables and the plain records handed to callers.

A *bank* is a named list of PDQ hashes with one meaning (its :class:`BankKind`) and one match
threshold. Entries carry the partner's or our own metadata and can be disabled one by one
(a hash found to cause false matches is switched off, never silently deleted: the history
of what was matched against stays explainable). Tables live here, on the shared
:class:`tutela.store.db.Base`; the migration is ``0002_banks``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tutela.store.db import Base
from tutela.store.decisions import utc

DEFAULT_THRESHOLD = 31
"""PDQ's recommended match distance (ThreatExchange's PDQ_CONFIDENT_MATCH_THRESHOLD)."""

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key.
_ID = BigInteger().with_variant(Integer(), "sqlite")


class BankKind(StrEnum):
    """What a match in the bank means."""

    BLOCK = "block"
    """Known abuse material: a match blocks (unless a false-positive bank suppresses it)."""
    FALSE_POSITIVE = "false_positive"
    """Known innocent images that collide with block entries: suppresses their matches."""
    REGISTRY = "registry"
    """Tutela's own output registry (provenance): a match says where an image came from."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class HashBankRow(Base):
    __tablename__ = "hash_banks"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    threshold: Mapped[int] = mapped_column(Integer, default=DEFAULT_THRESHOLD)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class HashEntryRow(Base):
    __tablename__ = "hash_entries"
    __table_args__ = (
        Index("ix_hash_entries_bank_id_signal", "bank_id", "signal"),
        Index("ix_hash_entries_updated_at", "updated_at"),
        Index("ix_hash_entries_bank_id_ref", "bank_id", "ref"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(_ID, ForeignKey("hash_banks.id", ondelete="CASCADE"))
    signal: Mapped[str] = mapped_column(String(64))
    ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True, slots=True)
class Bank:
    """A bank's public record."""

    id: int
    name: str
    kind: BankKind
    threshold: int
    enabled: bool
    description: str
    created_at: datetime
    entries: int | None = None
    """Enabled entries, when the caller asked for counts."""

    @classmethod
    def from_row(cls, row: HashBankRow, entries: int | None = None) -> Bank:
        return cls(
            row.id,
            row.name,
            BankKind(row.kind),
            row.threshold,
            row.enabled,
            row.description,
            utc(row.created_at),
            entries,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": str(self.kind),
            "threshold": self.threshold,
            "enabled": self.enabled,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "entries": self.entries,
        }


@dataclass(frozen=True, slots=True)
class Entry:
    """One hash in a bank. ``ref`` is an external reference (a partner's id, a generation id)."""

    id: int
    bank_id: int
    signal: str
    ref: str | None
    metadata: dict[str, Any]
    enabled: bool
    created_at: datetime

    @classmethod
    def from_row(cls, row: HashEntryRow) -> Entry:
        return cls(
            row.id,
            row.bank_id,
            row.signal,
            row.ref,
            dict(row.meta or {}),
            row.enabled,
            utc(row.created_at),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "bank_id": self.bank_id,
            "signal_type": "pdq",
            "signal_str": self.signal,
            "ref": self.ref,
            "metadata": self.metadata,
            "enabled": self.enabled,
            "created_at": self.created_at.isoformat(),
        }
