"""A throw-away PostgreSQL server for tests, started from the Debian binaries.

Why not a mock or SQLite only: the store must behave the same on both databases (types,
time zones, locking), and only a real server shows that. ``initdb`` + ``pg_ctl`` start one in
a temporary directory on a free loopback port in about a second; it is stopped and deleted
at the end of the session. Binaries are looked up on PATH and in /usr/lib/postgresql/*/bin.
When they are missing the PostgreSQL tests are skipped locally, but under ``CI=true`` they
fail: CI installs the Debian ``postgresql`` package (see ``.ci/run``), so a skip there would
hide a broken set-up.

PostgreSQL refuses to run as root; when the tests run as root the server runs as the
``postgres`` system user (created by the Debian package).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_db_counter = itertools.count(1)


def find_pg_bin() -> Path | None:
    """The directory holding initdb and pg_ctl, newest version first, or None."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit()
        else 0,
        reverse=True,
    )
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempPostgres:
    """One PostgreSQL server in a temporary directory. ``start()``, ``url(db)``, ``stop()``."""

    def __init__(self, bin_dir: Path, *, fsync: bool = False) -> None:
        self.bin_dir = bin_dir
        self.fsync = fsync
        self.dir = Path(tempfile.mkdtemp(prefix="tutela-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.user = "tutela"
        self._run_as: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError as exc:
                raise RuntimeError("running as root and there is no 'postgres' user") from exc
            self._run_as = "postgres"
            shutil.chown(self.dir, "postgres")

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            user=self._run_as,
            cwd=self.dir,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}\n{result.stderr}")

    def start(self) -> TempPostgres:
        self._run(
            "initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8",
            "--no-locale", "--no-sync",
        )
        options = (
            f"-p {self.port} -h 127.0.0.1 -k {self.dir} -c max_connections=200"
            + ("" if self.fsync else " -c fsync=off -c synchronous_commit=off")
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"),
            "-w", "-t", "60", "start",
        )
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database on this server; its SQLAlchemy URL."""
        import psycopg

        name = name or f"t{os.getpid()}_{next(_db_counter)}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres",
            autocommit=True,
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name is ours: letters, digits, _
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def _unavailable(message: str) -> None:
    """Skip locally; under ``CI=true`` fail, because CI installs PostgreSQL on purpose."""
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: the PostgreSQL tests must run)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[TempPostgres]:
    """The session's PostgreSQL server (skipped without binaries; an error under CI=true)."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        _unavailable("PostgreSQL binaries (initdb, pg_ctl) not found; install Debian 'postgresql'")
    try:
        server = TempPostgres(bin_dir).start()  # type: ignore[arg-type]
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        _unavailable(f"could not start a throw-away PostgreSQL server: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: TempPostgres) -> str:
    """A fresh, empty database for one test."""
    return pg_server.create_database()
