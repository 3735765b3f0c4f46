"""The store: one database (SQLite file or PostgreSQL) and the repositories on it.

:class:`Store` is what the Guard and the API hold. It connects lazily: opening a Guard costs
nothing until the first decision is recorded, and the embedded SQLite default creates its
directory and runs the migrations at that moment. PostgreSQL is never migrated implicitly
(``tutela db upgrade`` or ``tutela serve`` do it), because a shared production schema
should change only when an operator says so.

Every database failure that means "cannot reach or use the database" becomes
:class:`tutela.errors.StoreUnavailable`, which the API turns into 503: an answer whose
decision could not be stored is never sent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError, TimeoutError
from sqlalchemy.orm import Session, sessionmaker

from tutela.errors import StoreUnavailable
from tutela.store import migrate
from tutela.store.admin import AdminRecorder
from tutela.store.db import make_engine, make_sessionmaker
from tutela.store.decisions import DecisionRepository
from tutela.store.fastsql import close_batch, flush, flush_before_statements, open_batch
from tutela.store.group_commit import CONNECTION_KEY, GroupCommitter, Work, connection_of
from tutela.store.keys import ApiKeyRepository

T = TypeVar("T")
log = logging.getLogger(__name__)


def _is_unavailable(exc: BaseException) -> bool:
    """Errors that mean the database is down, unreachable, locked out or full."""
    if isinstance(exc, OperationalError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _as_unavailable(exc: Exception, what: str = "database") -> Exception:
    """``exc`` as it should reach callers (raised ``from exc``): a connectivity failure as
    :class:`StoreUnavailable` (the 503 path), anything else unchanged."""
    if isinstance(exc, StoreUnavailable) or not _is_unavailable(exc):
        return exc
    return StoreUnavailable(f"{what} unavailable: {type(exc).__name__}")


@contextmanager
def unavailable_on_error(what: str = "database") -> Iterator[None]:
    """Re-raise connectivity failures as :class:`StoreUnavailable` (the 503 path)."""
    try:
        yield
    except Exception as exc:
        raised = _as_unavailable(exc, what)
        if raised is exc:
            raise
        raise raised from exc


@dataclass(slots=True)
class Batch:
    """An open :meth:`Store.batch`: its session and Connection, and what runs after commit."""

    session: Session
    connection: Connection
    before_commit: list[Work] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)


class Store:
    """The database and its repositories. Build with :meth:`open`."""

    def __init__(self, engine: Engine, *, auto_migrate: bool) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = make_sessionmaker(engine)
        self._auto_migrate = auto_migrate
        self._ready = not auto_migrate
        self._lock = threading.Lock()
        # SQLite has one writer at a time; threads of one process that collide on its lock
        # back off in sleeps of several milliseconds (the busy handler). Queuing them on a
        # Python lock instead hands the database over the moment it is free.
        self._write_lock: AbstractContextManager[object] = (
            threading.RLock() if engine.dialect.name == "sqlite" else nullcontext()
        )
        self._writer = GroupCommitter(self.transaction)
        flush_before_statements(engine)  # a batch's held writes go before any other statement
        self._joined = threading.local()  # .batch: the thread's open Batch (see batch())
        self._decisions = DecisionRepository(self.sessions, engine)
        # operators' actions are reported here; the audit log connects itself (store/admin.py)
        self.admin = AdminRecorder()
        self._api_keys = ApiKeyRepository(self.sessions, self.admin)

    @classmethod
    def open(cls, url: str, *, auto_migrate: bool | None = None) -> Store:
        """A store on ``url``. ``auto_migrate`` defaults to True for SQLite, False otherwise."""
        is_sqlite = url.startswith("sqlite")
        if is_sqlite:
            database = make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = make_engine(url)
        return cls(engine, auto_migrate=is_sqlite if auto_migrate is None else auto_migrate)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # --- schema ---------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Run the migrations once, on first use, when this store migrates itself."""
        if self._ready:
            return
        with self._lock:
            if not self._ready:
                with unavailable_on_error():
                    migrate.upgrade(self.engine)
                self._ready = True

    def upgrade(self) -> list[str]:
        """Upgrade to every head now (``tutela db upgrade``); returns the applied heads."""
        with unavailable_on_error():
            heads = migrate.upgrade(self.engine)
        self._ready = True
        return heads

    # --- repositories ---------------------------------------------------------------------
    @property
    def decisions(self) -> DecisionRepository:
        self.ensure_schema()
        return self._decisions

    @property
    def api_keys(self) -> ApiKeyRepository:
        self.ensure_schema()
        return self._api_keys

    def run(self, fn: Callable[[], T]) -> T:
        """Call ``fn`` with connectivity failures turned into :class:`StoreUnavailable`."""
        with unavailable_on_error():
            return fn()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in a transaction that commits on success and rolls back on error.

        The transaction is the Connection's (``engine.begin()``); the Session is bound to it
        and joins it, and carries it in ``info`` (:func:`~tutela.store.group_commit.
        connection_of`). Why not ``sessionmaker.begin()``: its Session-owned transaction
        cost ~50 µs more per commit (SessionTransaction, connection lookup, commit and close
        events) on a path every check takes, and the hot statements use the Connection
        anyway. ORM work done through the session is flushed before the commit, so it
        commits with the rest; a failure anywhere rolls everything back.
        """
        self.ensure_schema()
        with self._write_lock:
            try:
                with self.engine.begin() as conn:
                    session = self.sessions(bind=conn)
                    session.info[CONNECTION_KEY] = conn
                    try:
                        yield session
                        session.flush()  # pending ORM objects, if any, join the commit
                    finally:
                        # joined, not owning: closing leaves the transaction to ``conn``. A
                        # session the ORM never used holds nothing; its close() would only
                        # cost time (~8 µs) on every commit
                        if session.in_transaction():
                            session.close()
            except Exception as exc:  # unavailable_on_error's rule, without its frame per commit
                raised = _as_unavailable(exc)
                if raised is exc:
                    raise
                raise raised from exc

    def write(
        self, work: Work, *, last: Work | None = None, then: Callable[[], None] | None = None
    ) -> None:
        """Run ``work(session)`` then ``last(session)`` and return once they are committed,
        sharing the transaction and commit with writes of other threads that arrive meanwhile
        (group commit, see :mod:`tutela.store.group_commit`). Both may run again alone if
        their batch fails, so they must write only through ``session``. ``then`` runs once
        the write is committed (in-memory state that may only follow committed data).

        Inside :meth:`batch` (in this thread) ``work`` runs at once in the batch's
        transaction and this returns *before* the commit: the batch's owner answers nobody
        until :meth:`batch` has committed. ``last`` runs at the end of the batch, just before
        its commit, after every other write of the batch: what it takes that serialises
        writers (the audit log's append lock) is then held for the end of the batch only,
        not while the batch's later checks run. ``then`` waits for the commit.
        """
        batch: Batch | None = getattr(self._joined, "batch", None)
        if batch is not None:
            work(batch.session)
            if last is not None:
                batch.before_commit.append(last)
            if then is not None:
                batch.after_commit.append(then)
            return
        if last is None:
            self._writer.submit(work)
        else:

            def both(session: Session) -> None:
                work(session)
                last(session)

            self._writer.submit(both)
        if then is not None:
            then()

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """One transaction for a run of checks in this thread, committed once at the end.

        Group commit (:meth:`write`) shares commits between threads, but on a busy core the
        checks reach the commit one at a time, so most commits carry a single decision. A
        caller that holds several checks at once (the API's prompt queue) runs them inside
        one ``batch()``: every :meth:`write` of this thread joins its transaction, and reads
        that go through :meth:`joined_connection` (the account monitor's) see what earlier
        checks of the batch wrote. One begin, one commit, one audit-log end read per batch.
        On PostgreSQL the batch also holds back the writes nobody reads an answer from
        (:meth:`tutela.store.fastsql.Prepared.send`): they travel with the next statement
        that needs an answer, or with the end of the batch, instead of one round trip each.

        All or nothing: if anything raises, nothing of the batch is committed and the error
        propagates (the caller runs the checks again one by one, so one bad check fails
        only itself). Nobody may be answered before this returns. Once committed it stays
        so: a ``then`` step failing after the commit is logged, not raised, since a caller
        that took the batch for failed would run its checks again and store them twice.
        """
        if getattr(self._joined, "batch", None) is not None:
            raise RuntimeError("store batches do not nest")
        with self.transaction() as session:
            batch = Batch(session, connection_of(session))
            self._joined.batch = batch
            scope = open_batch(batch.connection)  # PostgreSQL: writes held for a round trip
            try:
                yield batch
                for last in batch.before_commit:
                    last(session)
                session.flush()  # pending ORM objects, if any: before the commit below
                # PostgreSQL: what is still held, and the COMMIT, in one round trip
                flush(batch.connection, commit=True)
            finally:
                close_batch(scope)
                self._joined.batch = None
        # Committed: nothing below may undo it or make the caller think the batch failed (it
        # would run the checks again and store them twice). An in-memory follower that fails
        # here is logged; the state it follows is in the database for its next refresh.
        for then in batch.after_commit:
            try:
                then()
            except Exception:
                log.exception("after-commit step failed; the batch is committed")

    def joined_connection(self) -> Connection | None:
        """The Connection of this thread's open :meth:`batch`, or None outside one."""
        batch: Batch | None = getattr(self._joined, "batch", None)
        return None if batch is None else batch.connection

    # --- health ---------------------------------------------------------------------------
    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the database answers a query."""
        self.ensure_schema()
        with unavailable_on_error(), self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()
