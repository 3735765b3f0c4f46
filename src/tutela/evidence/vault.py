"""The evidence vault: blocked content of the gravest categories, sealed, held, accounted for.

What goes in: the image bytes and the prompt of a decision blocked for ``sexual_minors`` or
``sexualised_real_person``, nothing else (privacy by design: keep the minimum). Each item is
encrypted with AES-256-GCM under its own data key (see :mod:`tutela.evidence.keyring`); its
SHA-256 and MD5 (NCMEC's upload hash) and metadata stay readable so reports and the log can
refer to it without opening it.

Chain of custody: storing, every opening, every export, marking as reported, holds, re-wraps
and the purge are each a leaf in the audit log, with who did it and why. Opening content
without a reason is refused.

Preservation: reported items are held for ``reported_days`` (365 by default, the US REPORT
Act's year), or the jurisdiction's own period; items not (yet) reported for
``unreported_days``. A legal hold keeps an item past both. :meth:`EvidenceVault.purge`
crypto-shreds what has expired (ciphertext and wrapped key deleted, hashes kept) and logs it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from tutela.decision import Category, Decision, Verdict
from tutela.errors import InputError, TutelaError
from tutela.evidence.keyring import KeyWrapper
from tutela.evidence.log import AuditLog, EntryKind
from tutela.evidence.models import EvidenceItemRow, now, utc
from tutela.store.fastsql import Statements, insert_of
from tutela.store.group_commit import connection_of

PRESERVED = (Category.SEXUAL_MINORS, Category.SEXUALISED_REAL_PERSON)
_PRESERVED_NAMES = frozenset(str(c) for c in PRESERVED)
MAX_ITEM_BYTES = 64 * 1024 * 1024
_ITEMS = EvidenceItemRow.__table__
# every column named: the prepared path (store/fastsql.py) applies no column defaults
_INSERT_ITEM = insert_of(_ITEMS)


class EvidenceGone(TutelaError):
    """The item was purged: only its hashes and metadata remain."""


class EvidenceCorrupt(TutelaError):
    """The stored ciphertext does not open or does not match its recorded hash."""


@dataclass(frozen=True, slots=True)
class HoldPolicy:
    """How long items are preserved, in days. ``by_jurisdiction`` overrides ``reported_days``."""

    reported_days: int = 365
    unreported_days: int = 90
    by_jurisdiction: Mapping[str, int] = field(default_factory=dict)

    def reported_hold(self, jurisdiction: str | None) -> int:
        if jurisdiction and jurisdiction.upper() in self.by_jurisdiction:
            return int(self.by_jurisdiction[jurisdiction.upper()])
        return self.reported_days


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """An item's metadata (never its content)."""

    id: str
    decision_id: str
    account: str | None
    category: str
    content_kind: str
    media_type: str
    size: int
    sha256: str
    md5: str
    key_id: str
    meta: dict[str, Any]
    created_at: datetime
    reported_at: datetime | None
    jurisdiction: str | None
    hold_until: datetime
    legal_hold: bool
    purged_at: datetime | None

    @classmethod
    def from_row(cls, r: EvidenceItemRow) -> EvidenceItem:
        return cls(
            r.id,
            r.decision_id,
            r.account,
            r.category,
            r.content_kind,
            r.media_type,
            r.size,
            r.sha256,
            r.md5,
            r.key_id,
            dict(r.meta or {}),
            utc(r.created_at),
            utc(r.reported_at) if r.reported_at else None,
            r.jurisdiction,
            utc(r.hold_until),
            bool(r.legal_hold),
            utc(r.purged_at) if r.purged_at else None,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:  # type: ignore[attr-defined]
            v = getattr(self, name)
            out[name] = v.isoformat() if isinstance(v, datetime) else v
        return out


_ITEM_FIELDS = tuple(f.name for f in fields(EvidenceItem))
_PROMPT_TYPE = "text/plain; charset=utf-8"


def new_item_id() -> str:
    return "ev_" + secrets.token_hex(12)


def preserved_category(decision: Decision) -> str | None:
    """The category that makes this decision's content evidence, or None.

    Only blocked decisions qualify; of the two preserved categories the higher-scoring wins.
    """
    if decision.verdict is not Verdict.BLOCK:
        return None
    scored = [(decision.categories.get(str(c), 0.0), str(c)) for c in PRESERVED]
    score, cat = max(scored)
    return cat if score > 0 else None


class EvidenceVault:
    """Store, open, report, hold, purge and re-wrap evidence; log each step."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        log: AuditLog,
        keys: KeyWrapper,
        hold: HoldPolicy | None = None,
    ) -> None:
        self._sessions = sessions
        self.log = log
        self.keys = keys
        self.hold = hold or HoldPolicy()
        # sealing runs inside the transaction of a blocked check: its insert is prepared.
        # The vault's items live beside the log (one transaction holds both), so its engine.
        self._sql = Statements(log.engine)

    # ---- storing ---------------------------------------------------------------------------

    def preserve(
        self,
        decision: Decision,
        *,
        image: bytes | None = None,
        image_type: str = "application/octet-stream",
        prompt: str | None = None,
        meta: Mapping[str, Any] | None = None,
        session: Session | None = None,
    ) -> list[EvidenceItem]:
        """Keep ``decision``'s content if it is evidence; returns the items stored (maybe none).

        ``meta`` carries what a report needs later (``generated``: produced by the model,
        ``ip_events``: [{"ip": ..., "event": "Upload", "at": ...}], ``filename`` ...).
        """
        category = preserved_category(decision)
        if category is None:
            return []
        items = []
        base = {"decision_kind": str(decision.kind), **dict(meta or {})}
        if image is not None:
            items.append(
                self.store(
                    decision.id,
                    category,
                    "image",
                    image,
                    image_type,
                    meta=base,
                    account=decision.account,
                    session=session,
                )
            )
        if prompt is not None:
            items.append(
                self.store(
                    decision.id,
                    category,
                    "prompt",
                    prompt.encode("utf-8"),
                    _PROMPT_TYPE,
                    meta=base,
                    account=decision.account,
                    session=session,
                )
            )
        return items

    def seal_prompt(
        self, decision: Decision, prompt: str | None, *, session: Session
    ) -> str | None:
        """:meth:`preserve` of a prompt alone, in ``session``'s transaction; the item's id
        (None when the decision's content is not evidence or there is no prompt).

        The Guard's decision hook seals every blocked ``sexual_minors`` prompt on the
        request path and never reads the item back; building the :class:`EvidenceItem`
        that :meth:`preserve` returns (17 fields of a frozen dataclass, looked up by
        ``fields()``) cost ~8 µs of that recording. Same row, same custody leaf.
        """
        category = preserved_category(decision)
        if category is None or prompt is None:
            return None
        values = self._seal(
            decision.id, category, "prompt", prompt.encode("utf-8"), _PROMPT_TYPE,
            meta={"decision_kind": str(decision.kind)}, account=decision.account,
            actor="tutela", session=session,
        )  # fmt: skip
        return str(values["id"])

    def store(
        self,
        decision_id: str,
        category: str,
        content_kind: str,
        content: bytes,
        media_type: str,
        *,
        meta: Mapping[str, Any] | None = None,
        account: str | None = None,
        actor: str = "tutela",
        session: Session | None = None,
    ) -> EvidenceItem:
        """Encrypt and store one piece of content; logs ``evidence.store``."""
        values = self._seal(decision_id, category, content_kind, content, media_type,
                            meta=meta, account=account, actor=actor, session=session)  # fmt: skip
        # the item's metadata is the row as written, less the sealed content and its key
        return EvidenceItem(*[values[name] for name in _ITEM_FIELDS])

    def _seal(
        self,
        decision_id: str,
        category: str,
        content_kind: str,
        content: bytes,
        media_type: str,
        *,
        meta: Mapping[str, Any] | None,
        account: str | None,
        actor: str,
        session: Session | None,
    ) -> dict[str, Any]:
        """Encrypt, insert and log one item (see :meth:`store`); the row's values."""
        if category not in _PRESERVED_NAMES:
            raise InputError(f"category {category!r} is not kept in the evidence vault")
        if not content:
            raise InputError("evidence content is empty")
        if len(content) > MAX_ITEM_BYTES:
            raise InputError(f"evidence item over {MAX_ITEM_BYTES} bytes")
        item_id = new_item_id()
        sha256 = hashlib.sha256(content).hexdigest()
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        aad = _aad(item_id, sha256)
        ciphertext = AESGCM(data_key).encrypt(nonce, content, aad)
        key_id, wrapped = self.keys.wrap(data_key, aad)
        at = now()
        values: dict[str, Any] = {
            "id": item_id,
            "decision_id": decision_id,
            "account": account,
            "category": category,
            "content_kind": content_kind,
            "media_type": media_type,
            "size": len(content),
            "sha256": sha256,
            "md5": hashlib.md5(content, usedforsecurity=False).hexdigest(),
            "nonce": nonce,
            "ciphertext": ciphertext,
            "wrapped_key": wrapped,
            "key_id": key_id,
            "meta": dict(meta or {}),
            "created_at": at,
            "reported_at": None,
            "jurisdiction": None,
            "hold_until": at + timedelta(days=self.hold.unreported_days),
            "legal_hold": False,
            "purged_at": None,
        }
        with self._in(session) as s:
            # prepared, on the transaction's connection: the ORM's add + flush cost ~0.2 ms
            # on the request path of a blocked check, for a row nothing reads back here
            self._sql(_INSERT_ITEM).send(connection_of(s), values)
            self.log.add(
                s,
                EntryKind.EVIDENCE_STORE,
                {
                    "decision_id": decision_id,
                    "category": category,
                    "content_kind": content_kind,
                    "sha256": sha256,
                    "size": len(content),
                    "key_id": key_id,
                },
                subject=item_id,
                actor=actor,
            )
        return values

    # ---- reading ---------------------------------------------------------------------------

    def get(self, item_id: str) -> EvidenceItem:
        with self._sessions() as s:
            return EvidenceItem.from_row(self._row(s, item_id))

    def items(
        self,
        *,
        decision_id: str | None = None,
        since: datetime | None = None,
        include_purged: bool = True,
    ) -> list[EvidenceItem]:
        q = select(EvidenceItemRow).order_by(EvidenceItemRow.created_at)
        if decision_id:
            q = q.where(EvidenceItemRow.decision_id == decision_id)
        if since:
            q = q.where(EvidenceItemRow.created_at >= utc(since))
        if not include_purged:
            q = q.where(EvidenceItemRow.purged_at.is_(None))
        with self._sessions() as s:
            return [EvidenceItem.from_row(r) for r in s.scalars(q)]

    def open(self, item_id: str, *, actor: str, reason: str) -> bytes:
        """Decrypt an item's content. Needs who and why; the access is logged first.

        The log entry is written before the content is returned, and an access that fails
        (purged, corrupt, key missing) is logged too: an attempt is part of the custody chain.
        """
        return self._decrypt(self._accessed(item_id, actor, reason, "content"))

    def describe(self, item_id: str, *, actor: str, reason: str) -> EvidenceItem:
        """An item's metadata for a person; logged like any access (``what: metadata``)."""
        return EvidenceItem.from_row(self._accessed(item_id, actor, reason, "metadata"))

    def _accessed(self, item_id: str, actor: str, reason: str, what: str) -> EvidenceItemRow:
        """The item's row, after committing a custody entry for this access."""
        _require_actor(actor, reason)
        with self._sessions.begin() as s:
            row = self._row(s, item_id)
            self.log.append(
                EntryKind.EVIDENCE_ACCESS,
                {"reason": reason, "what": what},
                subject=item_id,
                actor=actor,
                session=s,
            )
        return row

    def custody(self, item_id: str) -> list[dict[str, Any]]:
        """The item's chain of custody: every log entry about it, oldest first."""
        return [e.to_dict() for e in self.log.find(item_id)]

    # ---- holds, reports, purge -------------------------------------------------------------

    def mark_reported(
        self,
        item_id: str,
        *,
        actor: str,
        jurisdiction: str,
        reference: str | None = None,
        at: datetime | None = None,
    ) -> EvidenceItem:
        """Record that the item was reported; extends its hold to the reported period."""
        _require_actor(actor, jurisdiction)
        at = utc(at or now())
        days = self.hold.reported_hold(jurisdiction)
        with self._sessions.begin() as s:
            row = self._row(s, item_id)
            row.reported_at = at
            row.jurisdiction = jurisdiction.upper()
            row.hold_until = max(utc(row.hold_until), at + timedelta(days=days))
            self.log.append(
                EntryKind.EVIDENCE_REPORT,
                {
                    "jurisdiction": row.jurisdiction,
                    "reference": reference,
                    "hold_until": row.hold_until.isoformat(),
                },
                subject=item_id,
                actor=actor,
                session=s,
            )
            return EvidenceItem.from_row(row)

    def set_legal_hold(self, item_id: str, *, actor: str, reason: str, on: bool) -> EvidenceItem:
        """A legal hold (e.g. a preservation request) keeps the item until it is lifted."""
        _require_actor(actor, reason)
        with self._sessions.begin() as s:
            row = self._row(s, item_id)
            row.legal_hold = on
            self.log.append(
                EntryKind.ADMIN,
                {"action": "legal_hold", "on": on, "reason": reason},
                subject=item_id,
                actor=actor,
                session=s,
            )
            return EvidenceItem.from_row(row)

    def purge(self, *, actor: str, at: datetime | None = None) -> list[str]:
        """Crypto-shred every expired item not under legal hold; log each. Returns their ids."""
        _require_actor(actor, "purge")
        at = utc(at or now())
        purged = []
        with self._sessions.begin() as s:
            rows = s.scalars(
                select(EvidenceItemRow).where(
                    EvidenceItemRow.purged_at.is_(None),
                    EvidenceItemRow.hold_until <= at,
                    or_(
                        EvidenceItemRow.legal_hold.is_(False), EvidenceItemRow.legal_hold.is_(None)
                    ),
                )
            ).all()
            for row in rows:
                row.ciphertext = None
                row.wrapped_key = None
                row.purged_at = at
                purged.append(row.id)
                self.log.append(
                    EntryKind.EVIDENCE_PURGE,
                    {
                        "hold_until": utc(row.hold_until).isoformat(),
                        "sha256": row.sha256,
                        "reported": row.reported_at is not None,
                    },
                    subject=row.id,
                    actor=actor,
                    at=at,
                    session=s,
                )
        return purged

    def rewrap(self, *, actor: str) -> int:
        """Re-wrap every live item's data key under the current KEK; returns how many moved."""
        _require_actor(actor, "rewrap")
        current = self.keys.current_key_id()
        moved = 0
        with self._sessions.begin() as s:
            rows = s.scalars(
                select(EvidenceItemRow).where(
                    EvidenceItemRow.purged_at.is_(None), EvidenceItemRow.key_id != current
                )
            ).all()
            for row in rows:
                aad = _aad(row.id, row.sha256)
                assert row.wrapped_key is not None
                data_key = self.keys.unwrap(row.key_id, row.wrapped_key, aad)
                old = row.key_id
                row.key_id, row.wrapped_key = self.keys.wrap(data_key, aad)
                moved += 1
                self.log.append(
                    EntryKind.EVIDENCE_REWRAP,
                    {"from": old, "to": row.key_id},
                    subject=row.id,
                    actor=actor,
                    session=s,
                )
        return moved

    # ---- internals -------------------------------------------------------------------------

    def _in(self, session: Session | None):  # type: ignore[no-untyped-def]
        from contextlib import nullcontext

        return nullcontext(session) if session is not None else self._sessions.begin()

    @staticmethod
    def _row(s: Session, item_id: str) -> EvidenceItemRow:
        row = s.get(EvidenceItemRow, item_id)
        if row is None:
            raise InputError(f"no evidence item {item_id}")
        return row

    def _decrypt(self, row: EvidenceItemRow) -> bytes:
        if row.purged_at is not None or row.ciphertext is None or row.wrapped_key is None:
            raise EvidenceGone(f"evidence item {row.id} was purged on {row.purged_at}")
        aad = _aad(row.id, row.sha256)
        data_key = self.keys.unwrap(row.key_id, row.wrapped_key, aad)
        try:
            content = AESGCM(data_key).decrypt(row.nonce, row.ciphertext, aad)
        except InvalidTag:
            raise EvidenceCorrupt(f"evidence item {row.id} does not decrypt") from None
        if hashlib.sha256(content).hexdigest() != row.sha256:
            raise EvidenceCorrupt(f"evidence item {row.id} does not match its SHA-256")
        return content


def _aad(item_id: str, sha256: str) -> bytes:
    """Binds ciphertext and wrapped key to their item: swapping rows makes them fail to open."""
    return f"tutela-evidence/1|{item_id}|{sha256}".encode()


def _require_actor(actor: str, reason: str) -> None:
    if not actor or not actor.strip():
        raise InputError("say who is acting (actor)")
    if not reason or not reason.strip():
        raise InputError("say why (reason): every evidence access is recorded with its reason")
