"""Running the Alembic migrations: ``upgrade heads``, safely from several processes at once.

Each area ships a revision branching off "0001_core", so there are several heads and the
runner always upgrades to all of them. Two processes may start together (``serve --workers``,
two CLI calls on one data dir): on PostgreSQL an advisory lock serialises them, on SQLite a
file lock next to the database does; the second finds the schema current and does nothing.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_PG_LOCK_ID = 0x7475_7465_6C61  # "tutela": one advisory lock id for all migration runs


def alembic_config() -> Config:
    """An Alembic configuration pointing at Tutela's migrations (no ini file needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def script_heads() -> set[str]:
    """The head revisions shipped with this version of Tutela."""
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_heads(connection: Connection) -> set[str]:
    """The revisions the database is at (empty for a new database)."""
    return set(MigrationContext.configure(connection).get_current_heads())


def is_current(engine: Engine) -> bool:
    with engine.connect() as conn:
        return current_heads(conn) == script_heads()


def upgrade(engine: Engine) -> list[str]:
    """Upgrade the database behind ``engine`` to every head; returns the heads now applied."""
    heads = script_heads()
    with _migration_lock(engine), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
        if current_heads(conn) != heads:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")
        return sorted(current_heads(conn))


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """On a SQLite file: an exclusive lock on ``<db>.migrate.lock``; otherwise nothing."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).with_name(Path(database).name + ".migrate.lock")
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
