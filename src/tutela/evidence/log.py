"""The append-only audit log: every decision and every reviewer or admin action, as leaves of
an RFC 6962/9162 Merkle tree, with Ed25519-signed checkpoints every ``checkpoint_every`` leaves.

Why in the database and not a file: the API workers share the database already, and a leaf
index that is the table's primary key makes concurrent appends safe (a second writer that
picks the same index fails on the key and retries). The tree itself is never stored; it is
recomputed from the leaf hashes, which keeps the table the single source of truth.

What :meth:`AuditLog.verify` can and cannot catch is spelt out in docs/evidence.md: any change
to an entry, its hash or its index columns is caught and the entry named; a consistent rewrite
of entry *and* hash is caught by the first signed checkpoint above it; removing the newest
entries after the last checkpoint is not detectable by anyone holding only this database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import BigInteger, Engine, bindparam, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tutela.decision import Decision
from tutela.errors import InputError, TutelaError
from tutela.evidence import merkle
from tutela.evidence.models import AuditEntryRow, CheckpointRow, now, utc
from tutela.evidence.signing import CheckpointSigner, checkpoint_note
from tutela.instants import isoformat
from tutela.store.fastsql import Statements, insert_of
from tutela.store.group_commit import connection_of

ENTRY_VERSION = 1
DEFAULT_ORIGIN = "tutela/audit-log"
_APPEND_RETRIES = 50
_PG_APPEND_LOCK = 0x7475_7465_6C62  # one advisory lock id for audit-log appends


class EntryKind:
    """The kinds of leaf. Other strings are allowed for new actions; these are the known ones."""

    DECISION = "decision"
    REVIEW = "review"  # a reviewer confirmed or overturned a decision
    ADMIN = "admin"  # policy, key or configuration change by an operator
    EVIDENCE_STORE = "evidence.store"
    EVIDENCE_ACCESS = "evidence.access"
    EVIDENCE_REPORT = "evidence.report"
    EVIDENCE_PURGE = "evidence.purge"
    EVIDENCE_REWRAP = "evidence.rewrap"
    REPORT_SUBMIT = "report.submit"


# The canonical form is json's: json.dumps(doc, sort_keys=True, separators=(",", ":"),
# ensure_ascii=False), UTF-8 encoded. Every stored entry was written in it and verify()
# re-derives it, so it can never change. One encoder instance with those options gives the
# same bytes as json.dumps for less (json.dumps with options builds an encoder per call).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# orjson with sorted keys writes the same bytes as _CANONICAL for most documents, ~10x
# faster (a leaf per decision, ~15 µs of a blocked check's recording through json). Where
# it may not, _canonical() asks json (see there). Subclasses of str/int/dict/list, date-
# times and dataclasses make orjson raise under these options (json decides about them).
_ORJSON_CANONICAL = (
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)  # fmt: skip


def _canonical(doc: dict[str, Any]) -> bytes:
    """``doc`` in the canonical form, by orjson where its bytes are known to be json's.

    Checked against json for every code point, key order, integers to 64 bits and millions
    of floats (tests/evidence/test_canonical.py). They differ only in: non-finite floats
    (orjson: ``null``, json: ``NaN``/``Infinity``), floats below 1e-4 (json: ``1e-05``,
    orjson: ``0.00001`` or ``1e-5``), integers beyond 64 bits and non-string keys (orjson
    raises) and the types orjson refuses above. So an output holding ``null``, ``e-`` or
    ``0.0000`` anywhere (in a string too: a false alarm costs only the json encoding) is
    encoded again by json, as is anything orjson refuses; json then writes or raises exactly
    as it always did. Enums and UUIDs, which json refuses, are the one widening: orjson
    writes their value (unless the document goes to json anyway, which then raises), and
    such an entry still verifies (its parsed form re-encodes to the same bytes).
    """
    if not _ORJSON_AGREES:
        return _CANONICAL.encode(doc).encode()
    try:
        out = orjson.dumps(doc, option=_ORJSON_CANONICAL)
    except orjson.JSONEncodeError:
        return _CANONICAL.encode(doc).encode()
    if b"null" in out or b"e-" in out or b"0.0000" in out:
        return _CANONICAL.encode(doc).encode()
    return out


def _orjson_agrees() -> bool:
    """Whether the installed orjson writes the canonical bytes for what _canonical() lets
    it write: floats from 1e-4 up in either notation, integers to 64 bits, escapes and
    non-ASCII text, key order. Checked once at import, so an orjson release that formats
    any of these differently turns the fast path off instead of forking the log's bytes."""
    probe = {
        "floats": [0.0, -0.0, 1e-4, 0.1, 0.9, 1.0, 123456789.123, 1e15, 9999999999999998.0,
                   1e16, 1.5e16, 1e22, 1.7976931348623157e308, -2.5e300],
        "ints": [0, -1, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1],
        "text": "\x00\x1f\"\\/\x7f\u2028 é ✓ 子 \U0001f600",
        "ä": 1, "a": 2, "\U0001f600": 3, "\uffff": 4, "B": 5, "": 6,
    }  # fmt: skip
    try:
        return orjson.dumps(probe, option=_ORJSON_CANONICAL) == _CANONICAL.encode(probe).encode()
    except orjson.JSONEncodeError:
        return False


_ORJSON_AGREES = _orjson_agrees()


def encode_entry(
    seq: int, kind: str, at: datetime, actor: str | None, subject: str | None, data: dict[str, Any]
) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8): the bytes that are hashed and stored."""
    doc = {
        "v": ENTRY_VERSION,
        "seq": seq,
        "kind": kind,
        "at": isoformat(utc(at)),  # the decision's own text, remembered
        "actor": actor,
        "subject": subject,
        "data": data,
    }
    return _canonical(doc)


def encode_entry_json(
    seq: int, kind: str, at: datetime, actor: str | None, subject: str | None, data: dict[str, Any]
) -> bytes:
    """:func:`encode_entry` by json alone: the definition of the canonical form, kept as the
    reference the fast path is tested against."""
    doc = {
        "v": ENTRY_VERSION,
        "seq": seq,
        "kind": kind,
        "at": utc(at).isoformat(),
        "actor": actor,
        "subject": subject,
        "data": data,
    }
    return _CANONICAL.encode(doc).encode()


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One leaf as read back: its index, what it says, and the bytes that were hashed."""

    seq: int
    kind: str
    at: datetime
    actor: str | None
    subject: str | None
    data: dict[str, Any]
    entry: bytes
    leaf_hash: bytes

    @classmethod
    def from_row(cls, row: AuditEntryRow) -> LogEntry:
        doc = json.loads(row.entry)
        return cls(
            row.seq,
            row.kind,
            utc(row.created_at),
            row.actor,
            row.subject,
            doc.get("data", {}),
            row.entry,
            row.leaf_hash,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "subject": self.subject,
            "data": self.data,
            "leaf_hash": self.leaf_hash.hex(),
        }


@dataclass(frozen=True, slots=True)
class Checkpoint:
    tree_size: int
    root_hash: bytes
    created_at: datetime
    key_id: str
    signature: bytes
    note: bytes

    def to_dict(self) -> dict[str, Any]:
        import base64

        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "created_at": self.created_at.isoformat(),
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
            "note": base64.b64encode(self.note).decode(),
        }


@dataclass(slots=True)
class VerifyResult:
    """The outcome of :meth:`AuditLog.verify`. ``first_bad`` is the first entry found wrong."""

    entries: int = 0
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)
    first_bad: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, seq: int | None, message: str) -> None:
        if seq is not None and self.first_bad is None:
            self.first_bad = seq
        self.problems.append(message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "first_bad_entry": self.first_bad,
            "problems": self.problems,
        }


class AuditLog:
    """Append, read, prove and verify. One instance per process is enough; it holds no state."""

    def __init__(
        self,
        engine: Engine,
        signer: CheckpointSigner | None,
        *,
        origin: str = DEFAULT_ORIGIN,
        checkpoint_every: int = 256,
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self.engine = engine
        self.signer = signer
        self.origin = origin
        self.checkpoint_every = checkpoint_every
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # the append path's statements, prepared (store/fastsql.py): they run for every
        # decision, where SQLAlchemy's per-execute machinery cost more than SQLite's work
        self._sql = Statements(engine)

    # ---- appending -------------------------------------------------------------------------

    def append(
        self,
        kind: str,
        data: dict[str, Any],
        *,
        subject: str | None = None,
        actor: str | None = None,
        at: datetime | None = None,
        session: Session | None = None,
    ) -> LogEntry:
        """Append one leaf and return it; signs a checkpoint when an interval is complete.

        With ``session``, the leaf is written inside the caller's transaction (the Guard's
        decision hook), so the decision and its log entry commit or fail together.
        """
        at = utc(at or now())
        if session is not None:
            return self._append_in(session, kind, data, subject, actor, at)
        for _ in range(_APPEND_RETRIES):
            try:
                with self._sessions.begin() as s:
                    return self._append_in(s, kind, data, subject, actor, at)
            except IntegrityError:  # another writer took this index first: take the next one
                continue
        raise TutelaError("could not append to the audit log: too much contention")

    def add(
        self,
        session: Session,
        kind: str,
        data: dict[str, Any],
        *,
        subject: str | None = None,
        actor: str | None = None,
        at: datetime | None = None,
    ) -> int:
        """:meth:`append` inside ``session``'s transaction, returning only the leaf's index.

        For the request path's hooks (a decision's leaf, a sealed prompt's custody leaf),
        which never read the entry back: the :class:`LogEntry` that :meth:`append` builds (a
        frozen dataclass of eight fields) cost ~3 µs a leaf. Same checks, same leaf.
        """
        return self._write_in(session, kind, data, subject, actor, utc(at or now()))[0]

    def _append_in(
        self,
        s: Session,
        kind: str,
        data: dict[str, Any],
        subject: str | None,
        actor: str | None,
        at: datetime,
    ) -> LogEntry:
        seq, entry, leaf = self._write_in(s, kind, data, subject, actor, at)
        return LogEntry(seq, kind, at, actor, subject, data, entry, leaf)

    def _write_in(
        self,
        s: Session,
        kind: str,
        data: dict[str, Any],
        subject: str | None,
        actor: str | None,
        at: datetime,
    ) -> tuple[int, bytes, bytes]:
        """Write one leaf in ``s``'s transaction; its index, bytes and hash."""
        if not kind or len(kind) > 32:
            raise InputError("log entry kind must be 1..32 characters")
        conn = connection_of(s)
        seq = self._next_seq(s, conn)
        entry = encode_entry(seq, kind, at, actor, subject, data)
        leaf = merkle.leaf_hash(entry)
        # Prepared on the transaction's connection: this runs once per decision on the
        # request path; the ORM's unit of work (add + flush) cost ~3x a Core insert, and a
        # Core insert several times the prepared one, for a row nobody reads back here.
        self._sql(_INSERT_ENTRY).send(
            conn,
            {
                "seq": seq,
                "kind": kind,
                "subject": subject,
                "actor": actor,
                "created_at": at,
                "entry": entry,
                "leaf_hash": leaf,
            },
        )
        s.info[_NEXT_SEQ_KEY] = seq + 1
        if self.signer is not None and (seq + 1) % self.checkpoint_every == 0:
            self._checkpoint_in(s, seq + 1)
        return seq, entry, leaf

    def _next_seq(self, s: Session, conn: Connection) -> int:
        """The index the next leaf written in ``s``'s transaction (on ``conn``) takes.

        The first append of a transaction serialises appenders (PostgreSQL: an advisory lock
        held to the commit; SQLite: the write lock the transaction already holds once it
        wrote anything) and reads the current end of the log; later appends in the same
        transaction (a group-commit batch of decisions) continue from the index kept in
        ``s.info``, so a batch reads the end of the log once, not once per decision. Nobody
        else can append between, since the lock is held until the commit, and a rolled-back
        transaction takes its ``s.info`` with it (each transaction gets a new Session).
        """
        cached = s.info.get(_NEXT_SEQ_KEY)
        if cached is not None:
            return int(cached)
        if conn.dialect.name == "postgresql":
            # serialise appenders across workers: the lock first, then the end is read (in a
            # statement of its own, so its snapshot is taken once the lock is held). In a
            # batch both go in one round trip (send): the server runs them in order
            self._sql(_PG_LOCK).send(conn, {"id": _PG_APPEND_LOCK})
        row = self._sql(_MAX_SEQ).first(conn, {})
        last = row[0] if row is not None else None
        return 0 if last is None else int(last) + 1

    def record_decision(self, decision: Decision, session: Session | None = None) -> LogEntry:
        """One leaf per decision, carrying its JSON shape (no prompt text)."""
        return self.append(
            EntryKind.DECISION,
            decision.to_dict(),
            subject=decision.id,
            actor="tutela",
            at=decision.created_at,
            session=session,
        )

    def add_decision(self, session: Session, decision: Decision) -> int:
        """The hook target: :meth:`record_decision` in ``session``'s transaction, returning
        the leaf's index only (see :meth:`add`)."""
        return self.add(
            session,
            EntryKind.DECISION,
            decision.to_dict(),
            subject=decision.id,
            actor="tutela",
            at=decision.created_at,
        )

    def record_review(
        self,
        decision_id: str,
        reviewer: str,
        outcome: str,
        *,
        note: str | None = None,
        at: datetime | None = None,
    ) -> LogEntry:
        """A reviewer's verdict on a decision: ``confirm`` or ``overturn``."""
        if outcome not in ("confirm", "overturn"):
            raise InputError("review outcome must be 'confirm' or 'overturn'")
        if not reviewer:
            raise InputError("a review needs the reviewer's name")
        return self.append(
            EntryKind.REVIEW,
            {"outcome": outcome, "note": note},
            subject=decision_id,
            actor=reviewer,
            at=at,
        )

    def record_admin(
        self,
        actor: str,
        action: str,
        details: dict[str, Any] | None = None,
        *,
        subject: str | None = None,
    ) -> LogEntry:
        """An operator's action (policy change, key rotation, export...)."""
        if not actor:
            raise InputError("an admin action needs the actor's name")
        return self.append(
            EntryKind.ADMIN, {"action": action, **(details or {})}, subject=subject, actor=actor
        )

    # ---- reading ---------------------------------------------------------------------------

    def size(self) -> int:
        with self._sessions() as s:
            return int(s.scalar(select(func.count()).select_from(AuditEntryRow)) or 0)

    def get(self, seq: int) -> LogEntry | None:
        if not 0 <= seq < 2**62:  # beyond any index; also keeps huge numbers off the driver
            return None
        with self._sessions() as s:
            row = s.get(AuditEntryRow, seq)
            return LogEntry.from_row(row) if row else None

    def find(self, subject: str, kind: str | None = None) -> list[LogEntry]:
        """Entries about ``subject`` (a decision id, an evidence id), oldest first."""
        q = select(AuditEntryRow).where(AuditEntryRow.subject == subject)
        if kind:
            q = q.where(AuditEntryRow.kind == kind)
        with self._sessions() as s:
            return [LogEntry.from_row(r) for r in s.scalars(q.order_by(AuditEntryRow.seq))]

    def entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        kinds: Sequence[str] | None = None,
        batch: int = 1000,
    ) -> Iterator[LogEntry]:
        """Entries in index order, optionally within ``[since, until)`` and of some kinds."""
        last = -1
        while True:
            q = select(AuditEntryRow).where(AuditEntryRow.seq > last)
            if since is not None:
                q = q.where(AuditEntryRow.created_at >= utc(since))
            if until is not None:
                q = q.where(AuditEntryRow.created_at < utc(until))
            if kinds:
                q = q.where(AuditEntryRow.kind.in_(list(kinds)))
            with self._sessions() as s:
                rows = list(s.scalars(q.order_by(AuditEntryRow.seq).limit(batch)))
            if not rows:
                return
            for r in rows:
                yield LogEntry.from_row(r)
            last = rows[-1].seq

    def leaf_hashes(self, size: int | None = None) -> list[bytes]:
        """The stored leaf hashes, in order (the first ``size`` of them)."""
        q = select(AuditEntryRow.leaf_hash).order_by(AuditEntryRow.seq)
        if size is not None:
            q = q.where(AuditEntryRow.seq < size)
        with self._sessions() as s:
            return list(s.scalars(q))

    def root(self, size: int | None = None) -> bytes:
        return merkle.root(self.leaf_hashes(size))

    # ---- checkpoints -----------------------------------------------------------------------

    def checkpoint(self, size: int | None = None) -> Checkpoint:
        """Sign the tree of ``size`` leaves (default: all); returns the existing one if signed."""
        with self._sessions.begin() as s:
            if size is None:
                size = int(s.scalar(select(func.count()).select_from(AuditEntryRow)) or 0)
            return self._checkpoint_in(s, size)

    def _checkpoint_in(self, s: Session, size: int) -> Checkpoint:
        """Sign the tree of ``size`` leaves in ``s``'s transaction (or return the one signed).

        Runs on the request path of every ``checkpoint_every``-th decision, so its
        statements are prepared like the append's.
        """
        if self.signer is None:
            raise TutelaError("no signing key: this log cannot sign checkpoints")
        if size <= 0:
            raise InputError("the log is empty: nothing to checkpoint")
        conn = connection_of(s)
        existing = self._sql(_GET_CHECKPOINT).first(conn, {"size": size})
        if existing is not None:
            tree_size, root_hash, created_at, key_id, signature, note = existing
            return Checkpoint(tree_size, root_hash, utc(created_at), key_id, signature, note)
        frontier = self._frontier_at(s, size)
        at = now()
        root_hash = frontier.root()
        note = checkpoint_note(self.origin, size, root_hash, at)
        signature = self.signer.sign(note)
        self._sql(_INSERT_CHECKPOINT).execute(
            conn,
            {
                "tree_size": size,
                "root_hash": root_hash,
                "created_at": at,
                "key_id": self.signer.key_id,
                "signature": signature,
                "note": note,
                "frontier": frontier.to_bytes(),
            },
        )
        return Checkpoint(size, root_hash, utc(at), self.signer.key_id, signature, note)

    def _frontier_at(self, s: Session, size: int) -> merkle.Frontier:
        """The tree's right edge at ``size``: from the nearest earlier checkpoint's saved edge
        plus the leaves after it (O(interval) reads), or from every leaf when there is none."""
        conn = connection_of(s)
        prev = self._sql(_PREV_FRONTIER).first(conn, {"size": size})
        frontier = merkle.Frontier()
        if prev is not None:
            prev_size, saved = prev
            try:
                frontier = merkle.Frontier.from_bytes(saved or b"")
            except ValueError:
                frontier = merkle.Frontier()  # unusable: rebuild from the leaves
            if frontier.size != prev_size:
                frontier = merkle.Frontier()
        leaves = self._sql(_LEAVES_BETWEEN).all(conn, {"start": frontier.size, "end": size})
        for (leaf,) in leaves:
            frontier.append(leaf)
        if frontier.size != size:
            raise InputError(f"the log has only {frontier.size} entries, not {size}")
        return frontier

    def checkpoints(self) -> list[Checkpoint]:
        with self._sessions() as s:
            return [
                _checkpoint(r)
                for r in s.scalars(select(CheckpointRow).order_by(CheckpointRow.tree_size))
            ]

    def latest_checkpoint(self) -> Checkpoint | None:
        with self._sessions() as s:
            row = s.scalars(
                select(CheckpointRow).order_by(CheckpointRow.tree_size.desc()).limit(1)
            ).first()
            return _checkpoint(row) if row else None

    # ---- proofs ----------------------------------------------------------------------------

    def inclusion_proof(self, seq: int) -> dict[str, Any]:
        """A self-contained inclusion proof for entry ``seq`` against a signed checkpoint.

        Uses the newest checkpoint; if the entry is newer than it, signs a fresh one first.
        The JSON shape is what ``tools/verify_proof.py`` checks.
        """
        import base64

        entry = self.get(seq)
        if entry is None:
            raise InputError(f"no log entry {seq}")
        cp = self.latest_checkpoint()
        if cp is None or cp.tree_size <= seq:
            cp = self.checkpoint()
        leaves = self.leaf_hashes(cp.tree_size)
        path = merkle.inclusion_proof(seq, leaves)
        if self.signer is None:
            raise TutelaError("no signing key: cannot attach the checkpoint's public key")
        return {
            "format": "tutela-inclusion-proof/1",
            "hash_algorithm": "sha256",
            "leaf_index": seq,
            "tree_size": cp.tree_size,
            "entry": base64.b64encode(entry.entry).decode(),
            "leaf_hash": entry.leaf_hash.hex(),
            "audit_path": [p.hex() for p in path],
            "root_hash": cp.root_hash.hex(),
            "checkpoint": {
                "note": base64.b64encode(cp.note).decode(),
                "signature": base64.b64encode(cp.signature).decode(),
                "key_id": cp.key_id,
                "public_key": base64.b64encode(self.signer.public_key_raw).decode(),
            },
        }

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> dict[str, Any]:
        """Proof that the tree of ``old_size`` is a prefix of the tree of ``new_size``."""
        if not 0 < old_size < 2**62 or (new_size is not None and not 0 < new_size < 2**62):
            raise InputError("tree sizes must be positive and within the log")
        leaves = self.leaf_hashes(new_size)
        if new_size is not None and len(leaves) != new_size:
            raise InputError(f"the log has only {len(leaves)} entries")
        try:
            proof = merkle.consistency_proof(old_size, leaves)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        return {
            "old_size": old_size,
            "new_size": len(leaves),
            "old_root": merkle.root(leaves[:old_size]).hex(),
            "new_root": merkle.root(leaves).hex(),
            "proof": [p.hex() for p in proof],
        }

    # ---- verification ----------------------------------------------------------------------

    def verify(self, known_roots: dict[int, bytes] | None = None) -> VerifyResult:
        """Check every entry, every hash, every checkpoint signature and root. Never raises.

        ``known_roots`` ({tree size: root}) are roots seen earlier outside this database, e.g.
        checkpoints published or handed to an auditor: the log must still produce each of
        them. This catches what a signature cannot: a rewrite by someone holding the key.
        """
        result = VerifyResult()
        frontier = merkle.Frontier()
        roots: dict[int, bytes] = {}
        cps = self.checkpoints()
        known = dict(known_roots or {})
        wanted = {c.tree_size for c in cps} | set(known)
        expected = 0
        with self._sessions() as s:
            for row in s.execute(
                select(AuditEntryRow).order_by(AuditEntryRow.seq).execution_options(yield_per=2000)
            ).scalars():
                if row.seq != expected:
                    result.fail(expected, f"entry {expected}: missing (next stored is {row.seq})")
                    expected = row.seq
                problem = _entry_problem(row)
                if problem:
                    result.fail(row.seq, f"entry {row.seq}: {problem}")
                frontier.append(merkle.leaf_hash(row.entry))
                if frontier.size in wanted:
                    roots[frontier.size] = frontier.root()
                expected += 1
                result.entries += 1
        for size, root in sorted(known.items()):
            if size not in roots:
                result.fail(
                    None,
                    f"known root at size {size}: the log has only {frontier.size} "
                    "entries (entries were removed)",
                )
            elif roots[size] != root:
                result.fail(
                    None,
                    f"known root at size {size}: the log no longer produces it "
                    "(history was rewritten)",
                )
        prev = 0
        for cp in cps:
            result.checkpoints += 1
            if cp.tree_size not in roots:
                result.fail(
                    None,
                    f"checkpoint {cp.tree_size}: the log has only "
                    f"{frontier.size} entries (entries were removed)",
                )
                continue
            if cp.note != checkpoint_note(self.origin, cp.tree_size, cp.root_hash, cp.created_at):
                result.fail(None, f"checkpoint {cp.tree_size}: its note does not match its fields")
            if self.signer is None or cp.key_id != self.signer.key_id:
                result.fail(None, f"checkpoint {cp.tree_size}: signed by unknown key {cp.key_id}")
            elif not self.signer.verify(cp.note, cp.signature):
                result.fail(None, f"checkpoint {cp.tree_size}: bad signature")
            if roots[cp.tree_size] != cp.root_hash:
                result.fail(
                    prev,
                    f"checkpoint {cp.tree_size}: root mismatch, an entry in "
                    f"{prev}..{cp.tree_size - 1} was rewritten",
                )
            prev = cp.tree_size
        return result


# The hot statements, each naming every parameter (the prepared path applies no column
# defaults and passes no values of its own)
_ENTRIES = AuditEntryRow.__table__
_CHECKPOINTS = CheckpointRow.__table__
_INSERT_ENTRY = insert_of(_ENTRIES)
_MAX_SEQ = select(func.max(_ENTRIES.c.seq))
_PG_LOCK = select(func.pg_advisory_xact_lock(bindparam("id", type_=BigInteger)))
_GET_CHECKPOINT = select(
    _CHECKPOINTS.c.tree_size,
    _CHECKPOINTS.c.root_hash,
    _CHECKPOINTS.c.created_at,
    _CHECKPOINTS.c.key_id,
    _CHECKPOINTS.c.signature,
    _CHECKPOINTS.c.note,
).where(_CHECKPOINTS.c.tree_size == bindparam("size"))
# the newest checkpoint below a size that saved its frontier; max() rather than ORDER BY ...
# LIMIT 1, whose SQLite form carries an OFFSET parameter of SQLAlchemy's own
_PREV_FRONTIER = select(_CHECKPOINTS.c.tree_size, _CHECKPOINTS.c.frontier).where(
    _CHECKPOINTS.c.tree_size
    == select(func.max(_CHECKPOINTS.c.tree_size))
    .where(_CHECKPOINTS.c.tree_size < bindparam("size"), _CHECKPOINTS.c.frontier.is_not(None))
    .scalar_subquery()
)
_LEAVES_BETWEEN = (
    select(_ENTRIES.c.leaf_hash)
    .where(_ENTRIES.c.seq >= bindparam("start"), _ENTRIES.c.seq < bindparam("end"))
    .order_by(_ENTRIES.c.seq)
)
_INSERT_CHECKPOINT = insert_of(_CHECKPOINTS)
_NEXT_SEQ_KEY = "tutela.audit_log.next_seq"


def _entry_problem(row: AuditEntryRow) -> str | None:
    """What is wrong with one stored row, judged on its own (None when nothing)."""
    if merkle.leaf_hash(row.entry) != row.leaf_hash:
        return "content does not match its leaf hash"
    try:
        doc = json.loads(row.entry.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "not valid JSON"
    if not isinstance(doc, dict) or doc.get("seq") != row.seq:
        return "index inside the entry does not match its position"
    if doc.get("kind") != row.kind or doc.get("subject") != row.subject:
        return "kind or subject column does not match the entry"
    if doc.get("actor") != row.actor:
        return "actor column does not match the entry"
    if doc.get("at") != utc(row.created_at).isoformat():
        return "time column does not match the entry"
    if (
        encode_entry(
            row.seq, doc["kind"], row.created_at, doc["actor"], doc["subject"], doc.get("data", {})
        )
        != row.entry
    ):
        return "entry is not in canonical form"
    return None


def _checkpoint(row: CheckpointRow) -> Checkpoint:
    return Checkpoint(
        row.tree_size, row.root_hash, utc(row.created_at), row.key_id, row.signature, row.note
    )
