"""Shared fixtures. Each test that needs a Guard gets one on its own temporary store."""

from __future__ import annotations

from pathlib import Path

import pytest
from pg import pg_server, pg_url  # PostgreSQL fixtures (tests/pg.py)

from tutela import Guard

__all__ = ["pg_server", "pg_url"]


@pytest.fixture(scope="session")
def session_guard(tmp_path_factory: pytest.TempPathFactory) -> Guard:
    """One Guard for read-only prompt tests (building the lexicon index once)."""
    return Guard.open(data_dir=tmp_path_factory.mktemp("guard"))


@pytest.fixture
def guard(tmp_path: Path) -> Guard:
    """A Guard on an isolated, empty store."""
    return Guard.open(data_dir=tmp_path / "data")
