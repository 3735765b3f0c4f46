"""Account storage behind one small class, so SQLite and PostgreSQL share one code path.

SQLAlchemy Core statements (not the ORM's unit of work) because the monitor sits on the
prompt check's hot path: a never-seen account costs one primary-key SELECT (on PostgreSQL,
a batch of checks reads all its accounts in one: :meth:`AccountRepository.prefetch`), and
nothing is written for an allowed prompt from an account with no recent block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from operator import itemgetter
from typing import Any

from sqlalchemy import ARRAY, Engine, any_, bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from tutela.accounts.cache import AccountRowCache
from tutela.accounts.fingerprint import Fingerprint
from tutela.accounts.state import AccountState, Attempt, Verification
from tutela.accounts.tables import (
    AccountRow,
    ActionRow,
    AttemptRow,
    BlockedPromptRow,
    VerificationRow,
)
from tutela.accounts.tiers import AgeTier
from tutela.decision import AccountAction
from tutela.errors import StoreUnavailable, TutelaError
from tutela.store.admin import AdminAction, AdminRecorder
from tutela.store.fastsql import Statements, batch_memo, insert_of, named

_acc = AccountRow.__table__
_att = AttemptRow.__table__
_ver = VerificationRow.__table__
_act = ActionRow.__table__
_blk = BlockedPromptRow.__table__

# Hot-path statements are built once and run through store/fastsql.py: SQLAlchemy compiles
# them and converts every value, the driver executes them (SQLAlchemy's per-call execution
# machinery cost more than SQLite's own work for these primary-key reads and short inserts).
_STATE_COLUMNS = [c.name for c in _acc.columns if c.name not in ("id", "created_at")]
_ACC_NAMES = [c.name for c in _acc.columns]
_ATT_NAMES = [c.name for c in _att.columns]
# the state's columns out of a loaded row, in this order, by one C call (a name look-up per
# column through a dict built for each row cost more than SQLite's primary-key read)
_STATE_ROW = itemgetter(*(_ACC_NAMES.index(n) for n in (
    "id", "age_tier", "age_method", "age_years", "age_verified_at", "jurisdiction", "risk",
    "risk_at", "strikes", "action", "action_since", "action_until", "action_reason", "report",
    "last_block_at", "version")))  # fmt: skip
_ATTEMPT_ROW = itemgetter(*(_ATT_NAMES.index(n) for n in (
    "at", "verdict", "content_verdict", "blocked_category", "language", "obfuscation",
    "fingerprint", "shingles", "probe")))  # fmt: skip
# stored text -> member by a dict look-up (an Enum call costs ~1 µs; unknown text still
# goes to the Enum, which raises as before)
_AGE_TIERS = {t.value: t for t in AgeTier}
_ACTIONS = {a.value: a for a in AccountAction}


_LOAD = select(_acc).where(_acc.c.id == bindparam("account_id"))
# a batch's accounts in one read (PostgreSQL; see AccountRepository.prefetch)
_LOAD_MANY = select(_acc).where(
    _acc.c.id == any_(bindparam("account_ids", type_=ARRAY(_acc.c.id.type)))
)
_ID = _ACC_NAMES.index("id")
_VERSION = _ACC_NAMES.index("version")
# the versions of remembered rows, confirmed in the batch that decides on them (cache.py)
_VERSIONS = select(_acc.c.id, _acc.c.version).where(
    _acc.c.id == any_(bindparam("account_ids", type_=ARRAY(_acc.c.id.type)))
)
_PREFETCHED = "accounts.prefetched"
"""Batch memo key (store/fastsql.py): account id -> its row as the batch began (None: no
row), for the accounts of the batch's checks that have not written their state since."""
_RECENT = (
    select(_att)
    .where(_att.c.account_id == bindparam("account_id"), _att.c.at >= bindparam("since"))
    .order_by(_att.c.at, _att.c.id)
)
_BLOCK_TIMES = select(_att.c.blocked_category, _att.c.at).where(
    _att.c.account_id == bindparam("account_id"),
    _att.c.at >= bindparam("since"),
    _att.c.blocked_category.is_not(None),
)
# the state is written only over the version it was read at (see _save_state)
_UPDATE_STATE = (
    update(_acc)
    .where(_acc.c.id == bindparam("account_id"), _acc.c.version == bindparam("read_version"))
    .values(named(_STATE_COLUMNS))
)
_INSERT_STATE = insert_of(_acc)
_INSERT_ATTEMPT = insert_of(_att, [n for n in _ATT_NAMES if n != "id"])
_INSERT_BLOCKED = insert_of(
    _blk, ["source", "account_id", "category", "fingerprint", "shingles", "digest", "at"]
)
_BLOCKED_AFTER = select(_blk).where(_blk.c.id > bindparam("after_id")).order_by(_blk.c.id)
_INSERT_ACTION = insert_of(
    _act, ["account_id", "at", "action", "until", "reason", "actor", "report"]
)


@dataclass(frozen=True, slots=True)
class ActionChange:
    """An action set on an account, for the history table."""

    action: AccountAction
    until: datetime | None
    reason: str
    actor: str
    report: bool = False


@dataclass(frozen=True, slots=True)
class BlockedPrompt:
    """A fingerprint in the reuse index (``source='prompt'``) or the bank (``'output'``)."""

    id: int
    source: str
    account_id: str | None
    category: str
    fingerprint: Fingerprint
    at: datetime


def _create_statement(dialect: str):  # type: ignore[no-untyped-def]
    """INSERT ... ON CONFLICT (id) DO NOTHING for SQLite and PostgreSQL (None elsewhere):
    creating an account another check created meanwhile inserts nothing."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        return None
    stmt = dialect_insert(_acc).values(named(_ACC_NAMES))
    return stmt.on_conflict_do_nothing(index_elements=[_acc.c.id])


class StaleAccountState(TutelaError):
    """The account's state changed between this check's read and its write (another check
    or an administrator wrote it). Nothing was written; the caller recomputes on the fresh
    state. Raised inside the decision's transaction, so that transaction rolls back."""


class AccountRepository:
    """Reads and writes account state. Every method is one short transaction."""

    def __init__(
        self,
        engine: Engine,
        ensure_schema: Callable[[], None] | None = None,
        admin: AdminRecorder | None = None,
        joined: Callable[[], Connection | None] | None = None,
        cache_size: int = 0,
    ) -> None:
        """``ensure_schema`` (the Store's) runs the migrations on first use where the store
        migrates itself (the embedded SQLite default). ``admin`` (the Store's) writes an
        operator's change to the audit log inside the change's transaction; without it such
        a change is refused, never made unrecorded. ``joined`` (the Store's
        ``joined_connection``) gives the transaction of a batch of checks this thread is
        running, which the check path's reads must use to see the batch's own writes.
        ``cache_size``: account rows remembered between batches (PostgreSQL; see
        :meth:`prefetch` and accounts/cache.py), 0 for none."""
        self.engine = engine
        self._joined = joined
        self._ensure_schema = ensure_schema
        self._admin = admin or AdminRecorder()
        self._create = _create_statement(engine.dialect.name)
        self._sql = Statements(engine)
        blocked = _INSERT_BLOCKED
        if engine.dialect.name != "sqlite":  # the new id: RETURNING, or SQLite's lastrowid
            blocked = blocked.returning(_blk.c.id)
        self._insert_blocked = self._sql(blocked)
        # a read costs a network round trip on PostgreSQL, a few µs in-process on SQLite
        self._prefetches = engine.dialect.name == "postgresql"
        self.cache = AccountRowCache(cache_size if self._prefetches else 0)

    # --- reads ---------------------------------------------------------------------------
    def load(self, account_id: str) -> AccountState:
        with self._errors(), self.engine.connect() as conn:
            return self._state(conn, account_id)

    def load_with_recent(
        self, account_id: str, at: datetime, window: timedelta
    ) -> tuple[AccountState, list[Attempt] | None]:
        """The state and, when the account was blocked within ``window`` before ``at``, its
        attempts since ``at - window`` (else None): what a check after a block needs, read
        on one connection instead of two (the monitor's hot path). A suspended account's
        checks stop before its prompt is read, so its attempts are not read either."""
        with self._errors(), self._reading() as conn:
            state = self._state(conn, account_id)
            if (
                not state.recently_blocked(at, window)
                or state.action_in_force(at) is AccountAction.SUSPEND
            ):
                return state, None
            return state, self._attempts(conn, account_id, at - window)

    def prefetch(self, account_ids: Iterable[str]) -> None:
        """Read the states of a batch's accounts in one statement (PostgreSQL, inside this
        thread's store batch; elsewhere nothing): each check of the batch then finds its
        account's row without a round trip of its own.

        Same answers as reading each when its check runs: the batch's transaction sees the
        same committed data a moment earlier, as if its checks had come a moment sooner,
        and a row the batch writes (a block) is dropped from the memo at once, so the next
        check of that account reads what was written. A state changed meanwhile by another
        worker is caught where it matters, when a check writes over it (its version).

        Rows this worker read in an earlier batch and still remembers (:attr:`cache`) are
        not read again: the batch decides on them, and their versions, read with its next
        round trip, must still be the remembered ones before it may commit
        (accounts/cache.py). A batch whose accounts are all remembered reads none.
        """
        conn = self._joined() if self._prefetches and self._joined is not None else None
        memo = batch_memo(conn) if conn is not None else None
        if conn is None or memo is None:
            return
        ids = list(dict.fromkeys(account_ids))
        if not ids:
            return
        known = self.cache.known(ids)
        if known:  # decided on as remembered; their versions confirmed before the commit
            expected = {i: (None if row is None else row[_VERSION]) for i, row in known.items()}
            self._sql(_VERSIONS).send(conn, {"account_ids": list(expected)},
                                      check=partial(self._confirm, expected))  # fmt: skip
        missing = [i for i in ids if i not in known]
        if missing:  # read now (carrying the versions' read, if any)
            with self._errors():
                rows = self._sql(_LOAD_MANY).all(conn, {"account_ids": missing})
            read: dict[str, tuple[object, ...] | None] = dict.fromkeys(missing)
            for row in rows:
                read[row[_ID]] = row
            self.cache.remember(read)
            known.update(read)
        memo[_PREFETCHED] = known

    def _confirm(self, expected: dict[str, int | None], rows: list[tuple[Any, ...]]) -> None:
        """The check of a batch's remembered rows (accounts/cache.py): each still at the
        version remembered (None: still no row), or the rows that moved are forgotten and
        the batch fails before its commit, to run again on what is stored now."""
        now = dict(rows)
        moved = [i for i, version in expected.items() if now.get(i) != version]
        if moved:
            self.cache.forget(moved)
            raise StaleAccountState(
                f"{len(moved)} account(s) changed since this worker last read them"
            )

    def recent_attempts(self, account_id: str, since: datetime) -> list[Attempt]:
        """Remembered attempts at or after ``since``, oldest first."""
        with self._errors(), self._reading() as conn:
            return self._attempts(conn, account_id, since)

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection for the check path's reads: the open batch's (store.batch) when this
        thread runs one, so a check sees what the batch's earlier checks wrote; else a
        pooled one."""
        conn = self._joined() if self._joined is not None else None
        if conn is not None:
            yield conn
            return
        with self.engine.connect() as conn:
            yield conn

    def _state(self, conn: Connection, account_id: str) -> AccountState:
        known = self._prefetched(conn)
        if known is not None and account_id in known:
            values = known[account_id]
        else:
            values = self._sql(_LOAD).first(conn, {"account_id": account_id})
        if values is None:
            return AccountState(id=account_id)
        (id_, age_tier, age_method, age_years, age_verified_at, jurisdiction, risk, risk_at,
         strikes, action, action_since, action_until, action_reason, report, last_block_at,
         version) = _STATE_ROW(values)  # fmt: skip
        return AccountState(
            id=id_,
            exists=True,
            age_tier=t if (t := _AGE_TIERS.get(age_tier)) is not None else AgeTier(age_tier),
            age_method=age_method,
            age_years=age_years,
            age_verified_at=age_verified_at,
            jurisdiction=jurisdiction,
            risk=risk or 0.0,
            risk_at=risk_at,
            strikes=dict(strikes or {}),
            action=a if (a := _ACTIONS.get(action)) is not None else AccountAction(action),
            action_since=action_since,
            action_until=action_until,
            action_reason=action_reason,
            report=bool(report),
            last_block_at=last_block_at,
            version=version or 0,
        )

    def _prefetched(self, conn: Connection) -> dict[str, tuple[object, ...] | None] | None:
        """The batch's prefetched rows on ``conn`` (:meth:`prefetch`), or None."""
        if not self._prefetches:
            return None
        memo = batch_memo(conn)
        return None if memo is None else memo.get(_PREFETCHED)

    def _attempts(self, conn: Connection, account_id: str, since: datetime) -> list[Attempt]:
        found = self._sql(_RECENT).all(conn, {"account_id": account_id, "since": since})
        return [
            Attempt(
                at=at,
                verdict=verdict,
                content_verdict=content_verdict,
                blocked_category=blocked_category,
                language=language,
                obfuscation=obfuscation,
                fingerprint=(
                    Fingerprint.from_bytes(fingerprint, shingles) if fingerprint else None
                ),
                probe=bool(probe),
            )
            for (at, verdict, content_verdict, blocked_category, language, obfuscation,
                 fingerprint, shingles, probe) in map(_ATTEMPT_ROW, found)
        ]  # fmt: skip

    def block_times(self, account_id: str, since: datetime) -> dict[str, list[datetime]]:
        """Times of the account's content blocks per category since ``since``."""
        out: dict[str, list[datetime]] = {}
        params = {"account_id": account_id, "since": since}
        with self._errors(), self._reading() as conn:
            for cat, at in self._sql(_BLOCK_TIMES).all(conn, params):
                out.setdefault(cat, []).append(at)
        return out

    def verifications(self, account_id: str) -> list[Verification]:
        q = select(_ver).where(_ver.c.account_id == account_id).order_by(_ver.c.id)
        with self._errors(), self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [
            Verification(
                tier=AgeTier(r["tier"]),
                method=r["method"],
                verified_at=r["verified_at"],
                provider=r["provider"],
                age_years=r["age_years"],
                jurisdiction=r["jurisdiction"],
                reference=r["reference"],
                recorded_at=r["recorded_at"],
            )
            for r in rows
        ]

    def actions(self, account_id: str, limit: int = 50) -> list[dict[str, object]]:
        q = (
            select(_act)
            .where(_act.c.account_id == account_id)
            .order_by(_act.c.id.desc())
            .limit(limit)
        )
        with self._errors(), self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [
            {
                "at": r["at"].isoformat(),
                "action": r["action"],
                "until": r["until"].isoformat() if r["until"] else None,
                "reason": r["reason"],
                "actor": r["actor"],
                "report": bool(r["report"]),
            }
            for r in rows
        ]

    def blocked_prompts(self, after_id: int = 0) -> list[BlockedPrompt]:
        """Index entries added after ``after_id`` (to keep an in-memory index in step)."""
        with self._errors(), self.engine.connect() as conn:
            rows = conn.execute(_BLOCKED_AFTER, {"after_id": after_id}).mappings().all()
        return [
            BlockedPrompt(
                r["id"],
                r["source"],
                r["account_id"],
                r["category"],
                Fingerprint.from_bytes(r["fingerprint"], r["shingles"], r["digest"]),
                r["at"],
            )
            for r in rows
        ]

    # --- writes --------------------------------------------------------------------------
    def record(
        self,
        state: AccountState,
        at: datetime,
        attempt: Attempt | None = None,
        kind: str = "prompt",
        change: ActionChange | None = None,
        blocked: Fingerprint | None = None,
        admin: AdminAction | None = None,
    ) -> int | None:
        """Save the account's state with the attempt, the action change and (``blocked``) the
        prompt's entry in the reuse index, in one transaction of its own (with ``admin``, the
        operator's action that caused it, written to the audit log in that transaction)."""
        with self._errors(), self.engine.begin() as conn:
            key = self.write(conn, state, at, attempt, kind, change, blocked)
            self._record_admin(conn, admin)
            return key

    def _record_admin(self, conn: Connection, admin: AdminAction | None) -> None:
        """Report an operator's action through the store's audit hook, on ``conn``'s
        transaction (the log writes through an ORM session joined to it)."""
        if admin is None:
            return
        with Session(bind=conn) as session:
            self._admin.record(session, admin)
            session.flush()

    def write(
        self,
        conn: Connection,
        state: AccountState,
        at: datetime,
        attempt: Attempt | None = None,
        kind: str = "prompt",
        change: ActionChange | None = None,
        blocked: Fingerprint | None = None,
        save_state: bool = True,
    ) -> int | None:
        """:meth:`record` inside the caller's transaction (the Guard's, with the decision);
        returns the reuse-index entry's id when ``blocked`` is given. ``save_state=False``
        leaves the account's row as it is (the check changed nothing in it: an allowed
        attempt remembered only for the probing window), one statement fewer."""
        key = None
        if save_state:
            self._save_state(conn, state, at)
        if attempt is not None:
            fp = attempt.fingerprint
            # sent (held in a batch on PostgreSQL: no round trip of its own); nothing reads
            # its answer, and a failure still fails the transaction, at the next round trip
            self._sql(_INSERT_ATTEMPT).send(
                conn,
                {
                    "account_id": state.id,
                    "at": attempt.at,
                    "kind": kind,
                    "verdict": attempt.verdict,
                    "blocked_category": attempt.blocked_category,
                    "content_verdict": attempt.content_verdict,
                    "language": attempt.language,
                    "obfuscation": attempt.obfuscation,
                    "fingerprint": fp.to_bytes() if fp else None,
                    "shingles": fp.size if fp else 0,
                    "probe": attempt.probe,
                },
            )
        if change is not None:
            self._log_action(conn, state.id, at, change)
        if blocked is not None:
            key = self.insert_blocked(conn, "prompt", state.id, "sexual_minors", blocked, at)
        return key

    def add_verification(self, state: AccountState, v: Verification, at: datetime,
                         change: ActionChange | None = None,
                         admin: AdminAction | None = None) -> None:  # fmt: skip
        """Record a provider's result and the account's new age tier (and lifted step-up);
        with ``admin``, who recorded it goes to the audit log in the same transaction."""
        with self._errors(), self.engine.begin() as conn:
            self._save_state(conn, state, at)
            conn.execute(
                insert(_ver).values(
                    account_id=state.id,
                    tier=v.tier.value,
                    method=v.method,
                    provider=v.provider,
                    age_years=v.age_years,
                    jurisdiction=v.jurisdiction,
                    reference=v.reference,
                    verified_at=v.verified_at,
                    recorded_at=at,
                )
            )
            if change is not None:
                self._log_action(conn, state.id, at, change)
            self._record_admin(conn, admin)

    def add_blocked_prompt(
        self, source: str, account_id: str | None, category: str, fp: Fingerprint, at: datetime
    ) -> int:
        with self._errors(), self.engine.begin() as conn:
            return self.insert_blocked(conn, source, account_id, category, fp, at)

    def insert_blocked(self, conn: Connection, source: str, account_id: str | None,
                       category: str, fp: Fingerprint, at: datetime) -> int:  # fmt: skip
        return self._insert_blocked.insert(
            conn,
            {
                "source": source,
                "account_id": account_id,
                "category": category,
                "fingerprint": fp.to_bytes(),
                "shingles": fp.size,
                "digest": fp.digest,
                "at": at,
            },
        )

    # --- internals -----------------------------------------------------------------------
    def _save_state(self, conn: Connection, s: AccountState, at: datetime) -> None:
        """Write ``s`` over the version it was read at, or create it if it was not there.

        Raises :class:`StaleAccountState` when another writer got there first (the row's
        version moved on, or the account was created meanwhile): a check's new state is
        computed from what it read, so writing it anyway would drop the other's strike or
        action. Both branches are single statements, atomic on SQLite and PostgreSQL.
        """
        # one dict of every parameter (the update's key and read version, or the insert's
        # id and creation time, are added to it rather than copied around it)
        values = {
            "age_tier": s.age_tier.value,
            "age_method": s.age_method,
            "age_years": s.age_years,
            "age_verified_at": s.age_verified_at,
            "jurisdiction": s.jurisdiction,
            "risk": s.risk,
            "risk_at": s.risk_at,
            "strikes": dict(s.strikes),
            "action": s.action.value,
            "action_since": s.action_since,
            "action_until": s.action_until,
            "action_reason": s.action_reason,
            "report": s.report,
            "last_block_at": s.last_block_at,
            "updated_at": at,
            "version": s.version + 1,
        }
        self._forget(conn, s.id)
        if s.exists:
            values["account_id"] = s.id
            values["read_version"] = s.version
            written = self._sql(_UPDATE_STATE).execute(conn, values)
        elif self._create is not None:
            values["id"] = s.id
            values["created_at"] = at
            written = self._sql(self._create).execute(conn, values)
        else:  # another database: the primary key refuses a second creator
            try:
                with conn.begin_nested():
                    conn.execute(_INSERT_STATE, {"id": s.id, "created_at": at, **values})
                written = 1
            except IntegrityError:
                written = 0
        if written != 1:
            raise StaleAccountState(f"account {s.id!r} changed while it was being checked")

    def _forget(self, conn: Connection, account_id: str) -> None:
        """Drop the row about to be written from what was read ahead (the batch's memo, the
        worker's cache): the batch's next check of the account and the next batch read what
        was written. Before the write, since a write that fails or rolls back leaves the
        remembered row unconfirmed too."""
        self.cache.forget((account_id,))
        known = self._prefetched(conn)
        if known is not None:
            known.pop(account_id, None)

    def _log_action(self, conn: Connection, account_id: str, at: datetime,
                    c: ActionChange) -> None:  # fmt: skip
        self._sql(_INSERT_ACTION).send(  # as the attempt's insert (write): no answer read
            conn,
            {
                "account_id": account_id,
                "at": at,
                "action": c.action.value,
                "until": c.until,
                "reason": c.reason[:500],
                "actor": c.actor[:200],
                "report": c.report,
            },
        )

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn an unreachable database into :class:`StoreUnavailable` (callers fail closed)."""
        try:
            if self._ensure_schema is not None:
                self._ensure_schema()
            yield
        except OperationalError as exc:
            raise StoreUnavailable(f"account store unavailable: {exc.orig}") from exc
