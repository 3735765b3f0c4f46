"""The evidence area's tables: the audit log, its signed checkpoints and the evidence vault.

Declared on the shared :class:`tutela.store.db.Base` (migration ``0004_evidence``). The log
rows keep the exact bytes that were hashed (``entry``) beside the hash, so verification
never depends on re-serialising JSON the same way twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from tutela.errors import InputError
from tutela.store.db import Base


def utc(dt: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; every one we store is UTC."""
    try:
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01 at +00:01 from a hostile query
        raise InputError(f"time {dt.isoformat()} is out of range") from None


class AuditEntryRow(Base):
    """One leaf of the log. ``seq`` is the leaf index (0-based, gap-free)."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    kind: Mapped[str] = mapped_column(String(32))  # read with subject or by seq: no index
    subject: Mapped[str | None] = mapped_column(String(128), index=True)
    actor: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class CheckpointRow(Base):
    """A signed statement "the log had ``tree_size`` leaves with root ``root_hash``"."""

    __tablename__ = "audit_checkpoint"

    tree_size: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    note: Mapped[bytes] = mapped_column(LargeBinary)
    frontier: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The tree's right edge at this size, so the next checkpoint reads only the new leaves.
    Not trusted by verification (which rebuilds everything); a forged one only yields a
    checkpoint that verification then rejects."""


class EvidenceItemRow(Base):
    """One piece of preserved content (an image or a prompt), encrypted with its own data key.

    ``ciphertext`` and ``wrapped_key`` become NULL when the item is purged; the hashes and
    metadata stay so the log and reports can still refer to what was there.
    """

    __tablename__ = "evidence_item"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    decision_id: Mapped[str] = mapped_column(String(64), index=True)
    account: Mapped[str | None] = mapped_column(String(256))
    category: Mapped[str] = mapped_column(String(40))
    content_kind: Mapped[str] = mapped_column(String(16))
    media_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    md5: Mapped[str] = mapped_column(String(32))
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64), index=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    jurisdiction: Mapped[str | None] = mapped_column(String(16))
    hold_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


EVIDENCE_TABLES = [AuditEntryRow.__table__, CheckpointRow.__table__, EvidenceItemRow.__table__]


def now() -> datetime:
    return datetime.now(UTC)
