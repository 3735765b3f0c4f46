"""Shared fixtures. Each test that needs a Guard gets one on its own temporary store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pg import pg_server, pg_url  # PostgreSQL fixtures (tests/pg.py)

from tutela import Guard
from tutela.store.database import Store

__all__ = ["pg_server", "pg_url"]


@pytest.fixture(scope="session")
def session_guard(tmp_path_factory: pytest.TempPathFactory) -> Guard:
    """One Guard for read-only prompt tests (building the lexicon index once)."""
    return Guard.open(data_dir=tmp_path_factory.mktemp("guard"))


@pytest.fixture
def guard(tmp_path: Path) -> Guard:
    """A Guard on an isolated, empty store."""
    return Guard.open(data_dir=tmp_path / "data")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on the embedded SQLite file and on the throw-away PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'tutela.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store on each database (see ``db_url``)."""
    s = Store.open(db_url)
    s.upgrade()
    yield s
    s.close()
