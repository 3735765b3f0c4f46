"""API keys: scoped, stored hashed, shown once.

A key is ``tut_`` + 43 URL-safe characters (256 random bits). Only its SHA-256 is stored:
a leaked database does not leak usable keys. A fast hash is the right tool here (unlike
for passwords) because the secret is random and long, so there is nothing to brute-force.

Scopes form a ladder, each including the ones below it:
``check`` (run checks) < ``review`` (also read stored decisions, which may hold the text of
blocked prompts) < ``admin`` (everything, including managing keys).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import DateTime, String, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from tutela.store.admin import AdminAction, AdminRecorder
from tutela.store.db import Base

KEY_PREFIX = "tut_"


class Scope(StrEnum):
    """What a key may do. Ordered: each scope includes every scope before it."""

    CHECK = "check"
    REVIEW = "review"
    ADMIN = "admin"

    def allows(self, needed: Scope) -> bool:
        """True when a key with this scope may call an endpoint that needs ``needed``."""
        order = list(Scope)
        return order.index(self) >= order.index(needed)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's public record (never the secret)."""

    id: str
    name: str
    scope: Scope
    hint: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def actor(self) -> str:
        """How the audit log names whoever acted with this key (never the secret)."""
        return f"apikey:{self.id} ({self.name})"

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "scope": str(self.scope),
            "hint": self.hint,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "active": self.active,
        }


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _record(row: ApiKeyRow) -> ApiKey:
    def aware(v: datetime | None) -> datetime | None:
        return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v

    created = aware(row.created_at)
    assert created is not None
    return ApiKey(row.id, row.name, Scope(row.scope), row.hint, created, aware(row.revoked_at))


class ApiKeyRepository:
    """Create, verify, list and revoke API keys."""

    def __init__(
        self, sessions: sessionmaker[Session], admin: AdminRecorder | None = None
    ) -> None:
        self._sessions = sessions
        self._admin = admin or AdminRecorder()

    def create(
        self, scope: Scope | str, name: str = "", *, actor: str | None = None
    ) -> tuple[ApiKey, str]:
        """A new key: its record and the secret, which is shown once and never stored.

        With ``actor`` (an operator, not a test fixture) the creation is written to the audit
        log in the same transaction: the key's id, name and scope, never the secret or hash.
        """
        scope = Scope(scope)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKeyRow(
            id="key_" + secrets.token_hex(8),
            name=name[:200],
            scope=str(scope),
            key_hash=hash_key(secret),
            hint=secret[: len(KEY_PREFIX) + 4],
            created_at=datetime.now(UTC),
            revoked_at=None,
        )
        with self._sessions.begin() as session:
            session.add(row)
            session.flush()
            record = _record(row)
            if actor is not None:
                self._admin.record(
                    session,
                    AdminAction(
                        actor,
                        "api_key.create",
                        record.id,
                        {"name": record.name, "scope": str(record.scope)},
                    ),
                )
        return record, secret

    def verify(self, secret: str) -> ApiKey | None:
        """The active key whose secret is ``secret``, or None.

        Looked up by hash (an indexed equality), then compared in constant time.
        """
        if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
            return None
        digest = hash_key(secret)
        with self._sessions() as session:
            row = session.scalars(select(ApiKeyRow).where(ApiKeyRow.key_hash == digest)).first()
            if row is None or not hmac.compare_digest(row.key_hash, digest):
                return None
            if row.revoked_at is not None:
                return None
            return _record(row)

    def list(self, include_revoked: bool = True) -> list[ApiKey]:
        stmt = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        if not include_revoked:
            stmt = stmt.where(ApiKeyRow.revoked_at.is_(None))
        with self._sessions() as session:
            return [_record(r) for r in session.scalars(stmt)]

    def revoke(self, key_id: str, *, actor: str | None = None) -> bool:
        """Revoke ``key_id``; False when no active key has that id.

        With ``actor`` a successful revocation is logged in the same transaction.
        """
        with self._sessions.begin() as session:
            result = session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            done = bool(result.rowcount)  # type: ignore[attr-defined]
            if done and actor is not None:
                self._admin.record(session, AdminAction(actor, "api_key.revoke", key_id))
            return done

    def count(self) -> int:
        """How many keys exist, revoked ones included (zero means a first start)."""
        with self._sessions() as session:
            return int(session.scalar(select(func.count()).select_from(ApiKeyRow)) or 0)
