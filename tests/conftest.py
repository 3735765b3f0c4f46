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


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[list[str], bool]]]:
    """Every PostgreSQL batch round trip from now on (store/pgwire.py): its statements' SQL,
    in order, and whether the COMMIT goes with them."""
    from tutela.store import pgwire

    real = pgwire.round_trip
    seen: list[tuple[list[str], bool]] = []

    def recording(driver, statements, *, commit=False):  # type: ignore[no-untyped-def]
        seen.append(([sql.decode() for sql, _ in statements], commit))
        return real(driver, statements, commit=commit)

    monkeypatch.setattr(pgwire, "round_trip", recording)
    yield seen
