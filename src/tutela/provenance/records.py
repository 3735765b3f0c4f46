"""The output registry's generation records, and the log of who looked an account up.

Why a table beside the hash bank: the bank of kind ``registry`` (``tutela.hashes.registry``)
indexes the PDQ hashes for lookup; this table holds what a trace must answer with (the
generation id, the time, the account, the prompt's hash, the watermark key). The account is
kept here, never in the image, its manifest or its watermark: only a lookup with the
``review`` or ``admin`` scope reads it, and every such lookup is written to
``provenance_lookups``. Migration: ``0005_provenance``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from tutela.provenance.payload import new_key
from tutela.store.database import Store
from tutela.store.db import Base

_ID = BigInteger().with_variant(Integer(), "sqlite")


def new_generation_id() -> str:
    """An opaque, unguessable generation reference: safe to publish in a manifest."""
    return "gen_" + secrets.token_hex(12)


class GenerationRow(Base):
    __tablename__ = "provenance_generations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    watermark_key: Mapped[int] = mapped_column(BigInteger, unique=True)
    account: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    prompt_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pdq: Mapped[list[str]] = mapped_column(JSON, default=list)
    pdq_quality: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decision_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    external_ref: Mapped[str | None] = mapped_column(String(256), nullable=True)


class LookupRow(Base):
    __tablename__ = "provenance_lookups"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    generation_id: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(256))
    scope: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class Generation:
    """One image Tutela let out."""

    id: str
    watermark_key: int
    account: str | None
    created_at: datetime
    prompt_sha256: str | None
    pdq: list[str]
    pdq_quality: int | None
    decision_id: str | None
    external_ref: str | None

    @classmethod
    def from_row(cls, row: GenerationRow) -> Generation:
        created = row.created_at
        if created.tzinfo is None:  # SQLite returns naive datetimes
            created = created.replace(tzinfo=UTC)
        return cls(row.id, row.watermark_key, row.account, created, row.prompt_sha256,
                   list(row.pdq or []), row.pdq_quality, row.decision_id, row.external_ref)

    def to_dict(self, *, with_account: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "generation_id": self.id,
            "created_at": self.created_at.isoformat(),
            "prompt_sha256": self.prompt_sha256,
            "decision_id": self.decision_id,
            "external_ref": self.external_ref,
        }
        if with_account:
            out["account"] = self.account
        return out


class GenerationRepository:
    """Generation records in the store (SQLite and PostgreSQL share this code)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(
        self,
        *,
        account: str | None,
        prompt_sha256: str | None,
        pdq: list[str],
        pdq_quality: int | None,
        decision_id: str | None = None,
        external_ref: str | None = None,
        generation_id: str | None = None,
        watermark_key: int | None = None,
        at: datetime | None = None,
    ) -> Generation:
        """Record a generation. Without ``watermark_key`` a fresh random one is drawn (and
        redrawn on the astronomically rare collision); with one, a collision raises."""
        for _ in range(8):
            values = {
                "id": generation_id or new_generation_id(),
                "watermark_key": watermark_key or new_key(),
                "account": account,
                "created_at": at or datetime.now(UTC),
                "prompt_sha256": prompt_sha256,
                "pdq": list(pdq),
                "pdq_quality": pdq_quality,
                "decision_id": decision_id,
                "external_ref": external_ref,
            }
            try:
                with self.store.transaction() as s:
                    s.execute(insert(GenerationRow).values(**values))
            except IntegrityError:
                if generation_id is not None or watermark_key is not None:
                    raise
                continue
            return self.get(values["id"])  # type: ignore[return-value]
        raise RuntimeError("could not draw an unused watermark key")  # 2^40 keys: never

    def get(self, generation_id: str) -> Generation | None:
        with self.store.transaction() as s:
            row = s.get(GenerationRow, generation_id)
            return Generation.from_row(row) if row else None

    def by_key(self, key: int) -> Generation | None:
        with self.store.transaction() as s:
            row = s.scalar(select(GenerationRow).where(GenerationRow.watermark_key == key))
            return Generation.from_row(row) if row else None

    def log_lookup(self, generation_id: str, *, actor: str, scope: str, channel: str) -> None:
        """Record that ``actor`` was shown the account behind ``generation_id``."""
        with self.store.transaction() as s:
            s.add(LookupRow(generation_id=generation_id, actor=actor, scope=scope,
                            channel=channel, created_at=datetime.now(UTC)))

    def lookups(self, generation_id: str) -> list[dict[str, Any]]:
        with self.store.transaction() as s:
            rows = s.scalars(select(LookupRow).where(LookupRow.generation_id == generation_id)
                             .order_by(LookupRow.id)).all()
            return [{"actor": r.actor, "scope": r.scope, "channel": r.channel,
                     "created_at": r.created_at.isoformat()} for r in rows]
