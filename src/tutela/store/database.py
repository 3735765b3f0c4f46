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

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import DBAPIError, OperationalError, TimeoutError
from sqlalchemy.orm import Session, sessionmaker

from tutela.errors import StoreUnavailable
from tutela.store import migrate
from tutela.store.admin import AdminRecorder
from tutela.store.db import make_engine, make_sessionmaker
from tutela.store.decisions import DecisionRepository
from tutela.store.group_commit import CONNECTION_KEY, GroupCommitter, Work
from tutela.store.keys import ApiKeyRepository

T = TypeVar("T")


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

    def write(self, work: Work) -> None:
        """Run ``work(session)`` and return once it is committed, sharing the transaction and
        commit with writes of other threads that arrive meanwhile (group commit, see
        :mod:`tutela.store.group_commit`). ``work`` may run again alone if its batch fails,
        so it must write only through ``session``.
        """
        self._writer.submit(work)

    # --- health ---------------------------------------------------------------------------
    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the database answers a query."""
        self.ensure_schema()
        with unavailable_on_error(), self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()
