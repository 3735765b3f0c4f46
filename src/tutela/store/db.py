"""Database plumbing shared by every repository: the declarative base, engines, sessions.

SQLite (WAL) is the embedded default; PostgreSQL serves multi-worker deployments. Both go
through the same SQLAlchemy 2 code path; only engine options differ here.

Convention for tables (one owner per concept): each area declares its models on :class:`Base`
in its own module (``store/decisions.py``, ``hashes/store.py``, ...) and ships its own Alembic
migration on a branch off the core revision, so areas never fight over revision order; the
migration runner upgrades to ``heads``.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, sessionmaker
from sqlalchemy.pool import QueuePool

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every Tutela table."""

    metadata = MetaData(naming_convention=NAMING)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and foreign keys switched on.

    The pool hands out the connection returned last (LIFO), not the one idle longest: a
    worker's checks then keep writing through one connection while it is free. On SQLite
    each connection has its own page cache, which SQLite drops whenever another
    connection wrote; handed out in turn, two pooled connections re-read ~40 pages from
    disk per batch of checks (measured: 43 reads per batch of 16 FIFO, 7 LIFO). On
    PostgreSQL the connections left idle can then time out.
    """
    if "poolclass" not in kwargs and _queue_pooled(url):  # not SQLite's in-memory pools
        kwargs.setdefault("pool_use_lifo", True)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        ping_when_idle(engine)
    return engine


PING_AFTER_IDLE_SECONDS = 1.0
"""A pooled connection idle longer than this is pinged before it is handed out."""
_RETURNED = "tutela.returned_at"


def ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection at checkout only if it sat idle in the pool for longer than
    :data:`PING_AFTER_IDLE_SECONDS`; one that does not answer is replaced, as SQLAlchemy's
    ``pool_pre_ping`` does (a ``DisconnectionError`` from the checkout event makes the pool
    discard it and connect afresh).

    Why not ``pool_pre_ping`` itself: it pings at every checkout, and a worker under load
    checks a connection out for every batch of prompt checks, so the ping was one network
    round trip of the batch's four, with psycopg's work around it on the worker's core. A
    connection returned a moment ago was alive a moment ago. What this gives up: if the
    server goes away within that second, the next batch fails with the connection (503,
    nothing stored, the pool then replaced) instead of meeting a fresh one; the store
    fails closed either way.
    """
    dialect = engine.dialect
    driver_error = dialect.loaded_dbapi.Error

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info[_RETURNED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(_RETURNED, 0.0) <= PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_conn)
        except driver_error as exc:
            raise DisconnectionError(f"pooled connection did not answer a ping: {exc}") from exc


def _queue_pooled(url: str) -> bool:
    """Whether SQLAlchemy gives ``url`` its ``QueuePool`` (files and servers; an in-memory
    SQLite database gets a pool without LIFO order)."""
    parsed = make_url(url)
    return issubclass(parsed.get_dialect().get_pool_class(parsed), QueuePool)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
