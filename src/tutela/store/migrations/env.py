"""Alembic environment for Tutela.

Run through :func:`tutela.store.migrate.upgrade` (``tutela db upgrade``), which hands over an
open connection in ``config.attributes["connection"]``; run through the ``alembic`` command
with ``-x url=...`` it connects by itself. Every area's revision branches off "0001_core",
so the runner always upgrades to ``heads``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from tutela.store.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database URL: pass -x url=... or use `tutela db upgrade`")
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run them online")
run_migrations_online()
