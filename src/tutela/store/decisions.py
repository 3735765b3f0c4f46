"""Stored decisions: the table and the repository every area reads decisions through.

Every check the Guard answers is recorded here *before* the answer leaves, so an HTTP 200
always means "this decision is on disk". What is kept follows the privacy rules of
DESIGN.md: the prompt's SHA-256 always, the raw prompt only when the verdict is not
``allow`` or the policy's retention asks for it (then with an expiry, see
:meth:`DecisionRepository.purge_expired_prompts`).

Other areas reuse :class:`DecisionRepository`: the account monitor asks for "decisions of
account X since T" (:meth:`~DecisionRepository.for_account`), the evidence log appends each
decision from a :meth:`tutela.guard.Guard.on_decision` callback.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    Index,
    String,
    Text,
    bindparam,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from tutela.decision import AccountAction, CheckKind, Decision, Signal, Verdict
from tutela.store.db import Base
from tutela.store.fastsql import Statements, insert_of
from tutela.store.group_commit import connection_of


class DecisionRow(Base):
    """One decision as stored. Column names match :meth:`Decision.to_dict` keys."""

    __tablename__ = "decisions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[str] = mapped_column(String(16))
    categories: Mapped[dict[str, float]] = mapped_column(JSON)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    signals: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    account: Mapped[str | None] = mapped_column(String(256))
    account_action: Mapped[str] = mapped_column(String(16))
    report: Mapped[bool] = mapped_column(Boolean)
    language: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    prompt_sha256: Mapped[str | None] = mapped_column(String(64))
    prompt_text: Mapped[str | None] = mapped_column(Text)
    prompt_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # Only the indexes a query uses: every check inserts a row into each (migration 0007).
    # The account's history is read by account and time; the hourly purge finds kept
    # prompt text by its expiry, and the partial index holds only the rows that have one.
    __table_args__ = (
        Index("ix_decisions_account_created_at", "account", "created_at"),
        Index(
            "ix_decisions_prompt_expires_at",
            "prompt_expires_at",
            sqlite_where=text("prompt_expires_at IS NOT NULL"),
            postgresql_where=text("prompt_expires_at IS NOT NULL"),
        ),
    )


_DECISIONS = DecisionRow.__table__
# every column named: the prepared path (store/fastsql.py) applies no column defaults
_DECISIONS_INSERT = insert_of(_DECISIONS)
_KEPT_PROMPT = select(_DECISIONS.c.prompt_text).where(_DECISIONS.c.id == bindparam("id"))
_KEPT_PROMPTS_KEY = "tutela.decisions.kept_prompts"
"""``Session.info`` key: {decision id: kept prompt text} of the rows added in the session's
transaction, so what was just written is not read back (:meth:`DecisionRepository.kept_prompt`)."""


@dataclass(frozen=True, slots=True)
class StoredDecision:
    """A decision read back from the store, with what was kept of the prompt."""

    decision: Decision
    prompt_sha256: str | None
    prompt_text: str | None

    def to_dict(self) -> dict[str, Any]:
        """The decision's JSON shape plus the prompt hash (and text, where it was kept)."""
        out = self.decision.to_dict()
        out["prompt_sha256"] = self.prompt_sha256
        out["prompt_text"] = self.prompt_text
        return out


def prompt_sha256(text: str) -> str:
    """SHA-256 (hex) of the prompt exactly as received, UTF-8 encoded.

    The raw text, not the normalised one, so a platform can match the hash against its own
    request logs.
    """
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def decision_row(
    decision: Decision,
    *,
    prompt: str | None = None,
    allowed_prompt_days: int = 0,
) -> dict[str, Any]:
    """The insert values for ``decision``, applying the prompt-retention rule.

    The raw ``prompt`` is kept when the verdict is not ``allow`` (it is evidence) or when
    ``allowed_prompt_days`` > 0 (then it expires after that many days).
    """
    verdict = decision.verdict
    keep_text = prompt is not None and (verdict is not Verdict.ALLOW or allowed_prompt_days > 0)
    created_at = utc(decision.created_at)
    expires = None
    if keep_text and verdict is Verdict.ALLOW:
        expires = created_at + timedelta(days=allowed_prompt_days)
    return {
        "id": decision.id,
        # the enums are StrEnums: str() is their stored text (and, on Python 3.11, ~3x
        # cheaper than .value, a descriptor)
        "kind": str(decision.kind),
        "verdict": str(verdict),
        "categories": {k: float(v) for k, v in decision.categories.items()},
        "reasons": list(decision.reasons),
        "signals": [s.to_dict() for s in decision.signals],
        "account": decision.account,
        "account_action": str(decision.account_action),
        "report": decision.report,
        "language": decision.language,
        "created_at": created_at,
        "prompt_sha256": prompt_sha256(prompt) if prompt is not None else None,
        "prompt_text": prompt if keep_text else None,
        "prompt_expires_at": expires,
    }


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time Tutela stores is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def utc(value: datetime) -> datetime:
    """``value`` in UTC (naive values are taken as UTC).

    SQLite keeps datetimes as text without an offset, so every time written or compared
    must be in one zone for ordering and ``since`` queries to be right.
    """
    return _aware(value).astimezone(UTC)


def _from_row(row: DecisionRow) -> StoredDecision:
    decision = Decision(
        verdict=Verdict(row.verdict),
        categories=dict(row.categories),
        reasons=list(row.reasons),
        signals=[
            Signal(s["detector"], s["kind"], float(s["score"]), dict(s.get("evidence") or {}))
            for s in row.signals
        ],
        kind=CheckKind(row.kind),
        account=row.account,
        account_action=AccountAction(row.account_action),
        report=row.report,
        id=row.id,
        created_at=_aware(row.created_at),
        language=row.language,
    )
    return StoredDecision(decision, row.prompt_sha256, row.prompt_text)


class DecisionRepository:
    """Reads and writes decisions. Shares one code path on SQLite and PostgreSQL."""

    def __init__(self, sessions: sessionmaker[Session], engine: Engine) -> None:
        self._sessions = sessions
        self._sql = Statements(engine)

    def add(self, session: Session, row: dict[str, Any]) -> None:
        """Insert one decision (values from :func:`decision_row`) in ``session``'s transaction.

        The caller owns the transaction, so other writes (an evidence-log entry, account
        state) can commit atomically with the decision.
        """
        # Prepared (store/fastsql.py): every check runs this insert, and through
        # Connection.execute SQLAlchemy's per-call machinery cost several times what SQLite
        # spends on the row. Same SQL, same type conversions, same error classes.
        # In a batch on PostgreSQL the row travels with the batch's next round trip (send).
        self._sql(_DECISIONS_INSERT).send(connection_of(session), row)
        session.info.setdefault(_KEPT_PROMPTS_KEY, {})[row["id"]] = row["prompt_text"]

    def kept_prompt(self, session: Session, decision_id: str) -> str | None:
        """The prompt text stored with ``decision_id``, as seen by ``session``'s transaction.

        For a decision added in this very transaction the text comes from what :meth:`add`
        wrote (the evidence vault seals it right after the insert; reading the row back cost
        a flush and an ORM load, ~0.1 ms); any other decision is read from the database.
        """
        kept = session.info.get(_KEPT_PROMPTS_KEY)
        if kept is not None and decision_id in kept:
            return kept[decision_id]  # type: ignore[no-any-return]
        row = self._sql(_KEPT_PROMPT).first(connection_of(session), {"id": decision_id})
        return row[0] if row is not None else None

    def record(
        self, decision: Decision, *, prompt: str | None = None, allowed_prompt_days: int = 0
    ) -> None:
        """Insert ``decision`` and commit (a convenience for callers without a transaction)."""
        with self._sessions.begin() as session:
            self.add(
                session,
                decision_row(decision, prompt=prompt, allowed_prompt_days=allowed_prompt_days),
            )

    def get(self, decision_id: str) -> StoredDecision | None:
        """The decision with ``decision_id``, or None."""
        with self._sessions() as session:
            row = session.get(DecisionRow, decision_id)
            return _from_row(row) if row is not None else None

    def for_account(
        self,
        account: str,
        *,
        since: datetime | None = None,
        before: datetime | None = None,
        limit: int = 100,
        verdicts: Sequence[Verdict] | None = None,
    ) -> list[StoredDecision]:
        """Decisions of ``account``, newest first: ``since`` <= created_at < ``before``.

        This is the account monitor's query ("what has this account asked for lately"),
        served by the (account, created_at) index.
        """
        stmt = select(DecisionRow).where(DecisionRow.account == account)
        if since is not None:
            stmt = stmt.where(DecisionRow.created_at >= utc(since))
        if before is not None:
            stmt = stmt.where(DecisionRow.created_at < utc(before))
        if verdicts:
            stmt = stmt.where(DecisionRow.verdict.in_([str(v) for v in verdicts]))
        stmt = stmt.order_by(DecisionRow.created_at.desc(), DecisionRow.id.desc()).limit(limit)
        with self._sessions() as session:
            return [_from_row(r) for r in session.scalars(stmt)]

    def exists(self, decision_ids: Sequence[str]) -> set[str]:
        """Which of ``decision_ids`` are stored (used to audit durability)."""
        found: set[str] = set()
        with self._sessions() as session:
            for start in range(0, len(decision_ids), 500):
                chunk = list(decision_ids[start : start + 500])
                found.update(
                    session.scalars(select(DecisionRow.id).where(DecisionRow.id.in_(chunk)))
                )
        return found

    def purge_expired_prompts(self, now: datetime | None = None) -> int:
        """Forget the raw text of allowed prompts whose retention has run out; the count."""
        now = utc(now or datetime.now(UTC))
        with self._sessions.begin() as session:
            result = session.execute(
                update(DecisionRow)
                .where(DecisionRow.prompt_expires_at.is_not(None))
                .where(DecisionRow.prompt_expires_at <= now)
                .values(prompt_text=None, prompt_expires_at=None)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
