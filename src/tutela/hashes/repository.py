"""Storage of hash banks and their entries (SQLite and PostgreSQL through one code path).

Everything a caller passes in is checked here, once, and refused with :class:`InputError`
naming what was wrong, so the CLI, the HTTP API and the importers share the same rules.
Bulk adds run in one transaction: an import either lands completely or changes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from tutela.errors import InputError
from tutela.hashes.index import MAX_RADIUS
from tutela.hashes.models import (
    DEFAULT_THRESHOLD,
    Bank,
    BankKind,
    Entry,
    HashBankRow,
    HashEntryRow,
    utcnow,
)
from tutela.hashes.signal import normalise_pdq
from tutela.store.admin import AdminAction
from tutela.store.database import Store

_BANK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
MAX_METADATA_BYTES = 16_384
MAX_REF_CHARS = 200
_CHUNK = 500  # rows per IN (...) list and per INSERT batch: within every backend's limits


@dataclass(frozen=True, slots=True)
class NewEntry:
    """An entry to add: a PDQ signal string, optional external reference and metadata."""

    signal: str
    ref: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class AddResult:
    """What an add or import did: ids of the new entries, and duplicates left out."""

    added: list[int]
    skipped_duplicates: int

    def to_dict(self) -> dict[str, Any]:
        return {"added": len(self.added), "skipped_duplicates": self.skipped_duplicates}


@dataclass(frozen=True, slots=True)
class IndexedEntry:
    """The minimum the in-memory index needs about an entry."""

    id: int
    bank_id: int
    signal: str
    enabled: bool
    updated_at: datetime


def check_bank_name(name: object) -> str:
    if not isinstance(name, str) or not _BANK_NAME.fullmatch(name):
        raise InputError(
            "bank name must be 1-100 characters: letters, digits, '_', '.', '-' "
            "(starting with a letter or digit)"
        )
    return name


def check_threshold(threshold: object) -> int:
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int)
        or not (0 <= threshold <= MAX_RADIUS)
    ):
        raise InputError(f"threshold must be an integer within 0..{MAX_RADIUS}")
    return threshold


def check_kind(kind: object) -> BankKind:
    try:
        return BankKind(str(kind))
    except ValueError:
        raise InputError(
            f"bank kind must be one of {', '.join(k.value for k in BankKind)}, not {kind!r}"
        ) from None


def check_entry(entry: NewEntry) -> NewEntry:
    """A normalised copy of ``entry``, or :class:`InputError`."""
    signal = normalise_pdq(entry.signal)
    ref = entry.ref
    if ref is not None:
        if not isinstance(ref, str) or not ref.strip() or len(ref) > MAX_REF_CHARS:
            raise InputError(f"ref must be a non-empty string of at most {MAX_REF_CHARS} chars")
        ref = ref.strip()
    metadata = entry.metadata if entry.metadata is not None else {}
    if not isinstance(metadata, dict):
        raise InputError("metadata must be a JSON object")
    if not metadata and isinstance(entry.enabled, bool):  # the common case of big imports
        return NewEntry(signal, ref, {}, entry.enabled)
    try:
        encoded = json.dumps(metadata, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"metadata is not plain JSON: {exc}") from None
    if len(encoded.encode()) > MAX_METADATA_BYTES:
        raise InputError(f"metadata is larger than {MAX_METADATA_BYTES} bytes")
    if not isinstance(entry.enabled, bool):
        raise InputError("enabled must be true or false")
    return NewEntry(signal, ref, json.loads(encoded), entry.enabled)


class BankRepository:
    """Banks and entries in the store. All methods are safe to call from several threads."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- banks ----------------------------------------------------------------------------
    def create_bank(
        self,
        name: str,
        kind: BankKind | str = BankKind.BLOCK,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        description: str = "",
        enabled: bool = True,
        actor: str | None = None,
    ) -> Bank:
        """A new bank; with ``actor`` (an operator) the creation is logged in its transaction."""
        name = check_bank_name(name)
        kind = check_kind(kind)
        threshold = check_threshold(threshold)
        if not isinstance(description, str) or len(description) > 2000:
            raise InputError("description must be text of at most 2000 characters")
        with self.store.transaction() as s:
            if s.scalar(select(HashBankRow.id).where(HashBankRow.name == name)) is not None:
                raise InputError(f"a bank named {name!r} already exists")
            row = HashBankRow(
                name=name,
                kind=str(kind),
                threshold=threshold,
                enabled=enabled,
                description=description,
                created_at=utcnow(),
                updated_at=utcnow(),
            )
            s.add(row)
            s.flush()
            self._audit(s, actor, "bank.create", name,
                        kind=str(kind), threshold=threshold, enabled=enabled)  # fmt: skip
            return Bank.from_row(row, 0)

    def _audit(self, s: Session, actor: str | None, action: str, bank: str, **details: Any) -> None:
        """Report an operator's change of a bank to the audit log (store/admin.py), inside the
        change's own transaction; internal writers (``actor`` None) are not admin actions."""
        if actor is not None:
            self.store.admin.record(s, AdminAction(actor, action, f"bank:{bank}", details))

    def _bank_row(self, s: Session, name: str) -> HashBankRow:
        row = s.scalar(select(HashBankRow).where(HashBankRow.name == name))
        if row is None:
            raise InputError(f"no bank named {name!r}")
        return row

    def get_bank(self, name: str) -> Bank:
        with self.store.transaction() as s:
            row = self._bank_row(s, name)
            return Bank.from_row(row, self._count(s, row.id))

    def _count(self, s: Session, bank_id: int) -> int:
        return int(
            s.scalar(
                select(func.count())
                .select_from(HashEntryRow)
                .where(HashEntryRow.bank_id == bank_id, HashEntryRow.enabled.is_(True))
            )
            or 0
        )

    def list_banks(self, *, counts: bool = True) -> list[Bank]:
        with self.store.transaction() as s:
            rows = s.scalars(select(HashBankRow).order_by(HashBankRow.name)).all()
            tally: dict[int, int] = {}
            if counts:
                tally = dict(
                    s.execute(
                        select(HashEntryRow.bank_id, func.count())
                        .where(HashEntryRow.enabled.is_(True))
                        .group_by(HashEntryRow.bank_id)
                    ).all()
                )
            return [Bank.from_row(r, tally.get(r.id, 0) if counts else None) for r in rows]

    def update_bank(
        self,
        name: str,
        *,
        enabled: bool | None = None,
        threshold: int | None = None,
        description: str | None = None,
        actor: str | None = None,
    ) -> Bank:
        """Switch a bank on or off, change its threshold or description (logged with ``actor``)."""
        with self.store.transaction() as s:
            row = self._bank_row(s, name)
            if enabled is not None:
                row.enabled = bool(enabled)
            if threshold is not None:
                row.threshold = check_threshold(threshold)
            if description is not None:
                row.description = description
            row.updated_at = utcnow()
            s.flush()
            changed = {
                "enabled": enabled,
                "threshold": threshold,
                "description_changed": True if description is not None else None,
            }
            self._audit(
                s, actor, "bank.update", name, **{k: v for k, v in changed.items() if v is not None}
            )
            return Bank.from_row(row, self._count(s, row.id))

    # --- entries --------------------------------------------------------------------------
    def add_entry(
        self,
        bank: str,
        signal: str,
        *,
        ref: str | None = None,
        metadata: dict[str, Any] | None = None,
        allow_duplicate: bool = False,
        actor: str | None = None,
    ) -> Entry | None:
        """Add one hash; returns the entry, or None when the bank already holds the hash."""
        result = self.add_entries(
            bank,
            [NewEntry(signal, ref, metadata or {})],
            skip_duplicates=not allow_duplicate,
            actor=actor,
        )
        return self.get_entry(result.added[0]) if result.added else None

    def add_entries(
        self,
        bank: str,
        entries: Iterable[NewEntry],
        *,
        skip_duplicates: bool = True,
        actor: str | None = None,
    ) -> AddResult:
        """Add many hashes in one transaction (all or nothing).

        With ``skip_duplicates`` a hash the bank already holds (or that appears twice in
        ``entries``) is added once; registries that record every generation pass False.
        With ``actor`` one log entry records the import: counts and the new ids' range (a
        million-line list is one leaf, not a million).
        """
        checked = [check_entry(e) for e in entries]
        added: list[int] = []
        skipped = 0
        with self.store.transaction() as s:
            row = self._bank_row(s, bank)
            seen: set[str] = set()
            for start in range(0, len(checked), _CHUNK):
                batch = checked[start : start + _CHUNK]
                if skip_duplicates:
                    existing = set(
                        s.scalars(
                            select(HashEntryRow.signal).where(
                                HashEntryRow.bank_id == row.id,
                                HashEntryRow.signal.in_({e.signal for e in batch}),
                            )
                        ).all()
                    )
                    fresh = []
                    for e in batch:
                        if e.signal in existing or e.signal in seen:
                            skipped += 1
                        else:
                            seen.add(e.signal)
                            fresh.append(e)
                    batch = fresh
                if not batch:
                    continue
                now = utcnow()
                # Core insert (column names, not ORM attributes): the ORM's bulk path costs
                # more than the database itself on million-row imports.
                table = HashEntryRow.__table__
                ids = s.scalars(
                    insert(table).returning(table.c.id, sort_by_parameter_order=True),
                    [
                        {
                            "bank_id": row.id,
                            "signal": e.signal,
                            "ref": e.ref,
                            "metadata": e.metadata,
                            "enabled": e.enabled,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for e in batch
                    ],
                ).all()
                added.extend(int(i) for i in ids)
            self._audit(
                s,
                actor,
                "bank.add_entries",
                bank,
                added=len(added),
                skipped=skipped,
                first_id=min(added, default=None),
                last_id=max(added, default=None),
            )
        return AddResult(added, skipped)

    def get_entry(self, entry_id: int) -> Entry:
        with self.store.transaction() as s:
            row = s.get(HashEntryRow, entry_id)
            if row is None:
                raise InputError(f"no hash entry with id {entry_id}")
            return Entry.from_row(row)

    def set_entry_enabled(
        self, entry_id: int, enabled: bool, *, actor: str | None = None
    ) -> Entry:
        """Switch one entry off (or on again). Entries are never deleted: history stays."""
        with self.store.transaction() as s:
            row = s.get(HashEntryRow, entry_id)
            if row is None:
                raise InputError(f"no hash entry with id {entry_id}")
            row.enabled = bool(enabled)
            row.updated_at = utcnow()
            s.flush()
            if actor is not None:
                bank = s.get(HashBankRow, row.bank_id)
                action = "bank.entry_enable" if enabled else "bank.entry_disable"
                self._audit(s, actor, action, bank.name if bank else str(row.bank_id),
                            entry=entry_id)  # fmt: skip
            return Entry.from_row(row)

    def entries(
        self, bank: str, *, include_disabled: bool = True, batch: int = 5_000
    ) -> Iterator[Entry]:
        """Every entry of ``bank`` in id order, fetched in batches (for export)."""
        with self.store.transaction() as s:
            bank_id = self._bank_row(s, bank).id
        last = 0
        while True:
            with self.store.transaction() as s:
                q = select(HashEntryRow).where(
                    HashEntryRow.bank_id == bank_id, HashEntryRow.id > last
                )
                if not include_disabled:
                    q = q.where(HashEntryRow.enabled.is_(True))
                rows = s.scalars(q.order_by(HashEntryRow.id).limit(batch)).all()
                chunk = [Entry.from_row(r) for r in rows]
            if not chunk:
                return
            yield from chunk
            last = chunk[-1].id

    def entries_page(self, bank: str, *, after_id: int = 0, limit: int = 100) -> list[Entry]:
        """Up to ``limit`` entries of ``bank`` with ids above ``after_id`` (keyset paging)."""
        with self.store.transaction() as s:
            bank_id = self._bank_row(s, bank).id
            rows = s.scalars(
                select(HashEntryRow)
                .where(HashEntryRow.bank_id == bank_id, HashEntryRow.id > after_id)
                .order_by(HashEntryRow.id)
                .limit(limit)
            ).all()
            return [Entry.from_row(r) for r in rows]

    def find_by_ref(self, bank: str, ref: str) -> list[Entry]:
        """Entries of ``bank`` recorded under external reference ``ref`` (a generation id)."""
        with self.store.transaction() as s:
            bank_id = self._bank_row(s, bank).id
            rows = s.scalars(
                select(HashEntryRow)
                .where(HashEntryRow.bank_id == bank_id, HashEntryRow.ref == ref)
                .order_by(HashEntryRow.id)
            ).all()
            return [Entry.from_row(r) for r in rows]

    def entries_by_id(self, ids: Sequence[int]) -> dict[int, Entry]:
        out: dict[int, Entry] = {}
        with self.store.transaction() as s:
            for start in range(0, len(ids), _CHUNK):
                rows = s.scalars(
                    select(HashEntryRow).where(
                        HashEntryRow.id.in_(list(ids[start : start + _CHUNK]))
                    )
                ).all()
                out.update((r.id, Entry.from_row(r)) for r in rows)
        return out

    # --- what the in-memory index follows -------------------------------------------------
    def enabled_entries(self, *, batch: int = 50_000) -> Iterator[list[tuple[int, str]]]:
        """(id, signal) of every enabled entry, in id order, one batch at a time."""
        last = 0
        while True:
            with self.store.transaction() as s:
                rows = s.execute(
                    select(HashEntryRow.id, HashEntryRow.signal)
                    .where(HashEntryRow.enabled.is_(True), HashEntryRow.id > last)
                    .order_by(HashEntryRow.id)
                    .limit(batch)
                ).all()
            if not rows:
                return
            yield [(int(i), sig) for i, sig in rows]
            last = int(rows[-1][0])

    def changed_since(self, when: datetime) -> list[IndexedEntry]:
        """Entries added, disabled or re-enabled at or after ``when``."""
        with self.store.transaction() as s:
            rows = s.execute(
                select(
                    HashEntryRow.id,
                    HashEntryRow.bank_id,
                    HashEntryRow.signal,
                    HashEntryRow.enabled,
                    HashEntryRow.updated_at,
                )
                .where(HashEntryRow.updated_at >= when)
                .order_by(HashEntryRow.id)
            ).all()
        return [IndexedEntry(int(i), int(b), sig, bool(en), ts) for i, b, sig, en, ts in rows]

    def latest_change(self) -> datetime | None:
        with self.store.transaction() as s:
            return s.scalar(select(func.max(HashEntryRow.updated_at)))

    def disable_entries(self, ids: Sequence[int]) -> int:
        """Disable many entries at once; returns how many changed."""
        changed = 0
        with self.store.transaction() as s:
            for start in range(0, len(ids), _CHUNK):
                res = s.execute(
                    update(HashEntryRow)
                    .where(
                        HashEntryRow.id.in_(list(ids[start : start + _CHUNK])),
                        HashEntryRow.enabled.is_(True),
                    )
                    .values(enabled=False, updated_at=utcnow())
                )
                changed += res.rowcount or 0
        return changed
