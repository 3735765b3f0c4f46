"""store/pgwire.py: a run of statements in one round trip, on the real PostgreSQL server.

Each test holds the wire path to what psycopg's own cursors do on the same connection:
the values read back, the errors raised, the transaction left behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import errors, pq
from psycopg.pq.abc import PGconn, PGresult
from psycopg.types.json import Json
from sqlalchemy import literal_column, select

from tutela.errors import StoreUnavailable
from tutela.store import pgwire
from tutela.store.database import Store
from tutela.store.fastsql import Statements

_TABLE = """CREATE TABLE wire (id bigint PRIMARY KEY, name text, at timestamptz, raw bytea,
                               doc jsonb, flag boolean, n double precision)"""
_ONE = select(literal_column("1"))
_INSERT = b"INSERT INTO wire (id, name, at, raw, doc, flag, n) VALUES ($1, $2, $3, $4, $5, $6, $7)"


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
def conn(pg_url: str) -> Iterator[psycopg.Connection]:
    """A psycopg connection (not autocommit, as SQLAlchemy's pool hands them out) on a
    fresh database with the ``wire`` table."""
    with psycopg.connect(_libpq(pg_url)) as c:
        c.execute(_TABLE)
        c.commit()
        yield c


def _count(pg_url: str) -> int:
    """Rows another session sees: only what was committed."""
    with psycopg.connect(_libpq(pg_url), autocommit=True) as other:
        row = other.execute("SELECT count(*) FROM wire").fetchone()
        assert row is not None
        return int(row[0])


def test_values_read_back_as_psycopgs_cursors_read_them(conn: psycopg.Connection) -> None:
    at = datetime(2026, 12, 3, 9, 30, 1, 123456, tzinfo=timezone(timedelta(hours=5)))
    row = (1, "zoë ünïcode", at, b"\x00\x01\xff", Json({"a": [1, 2], "b": None}), True, 0.5)
    pgwire.round_trip(conn, [(_INSERT, row), (_INSERT, (2, None, None, None, None, None, None))])
    answer = pgwire.round_trip(conn, [(b"SELECT * FROM wire WHERE id = $1 OR id = $2 "
                                       b"ORDER BY id", (1, 2))])  # fmt: skip
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM wire ORDER BY id")
        expected = cur.fetchall()
        codes = [d.type_code for d in cur.description or ()]
    assert answer.rows(0) == expected
    assert answer.type_codes(0) == codes
    assert answer.rowcount(0) == 2
    got = answer.rows(0)[0]
    assert got[2] == at and got[2].utcoffset() is not None
    assert got[3] == b"\x00\x01\xff" and got[4] == {"a": [1, 2], "b": None}


def test_the_transaction_is_begun_and_committed_as_asked(
    conn: psycopg.Connection, pg_url: str
) -> None:
    """No transaction open: BEGIN goes first, so the rows are not committed until asked;
    ``commit`` sends the COMMIT in the same round trip and leaves the connection idle."""
    assert conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
    done = pgwire.round_trip(conn, [(_INSERT, (1, "a", None, None, None, None, None))])
    assert done.rowcount(0) == 1  # BEGIN's own answer is not among the results
    assert conn.pgconn.transaction_status == pq.TransactionStatus.INTRANS
    assert _count(pg_url) == 0
    pgwire.round_trip(conn, [(_INSERT, (2, "b", None, None, None, None, None))], commit=True)
    assert conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
    assert _count(pg_url) == 2
    conn.commit()  # what SQLAlchemy does next: nothing left to send, and no error
    assert conn.execute("SELECT 1").fetchone() == (1,)  # psycopg carries on with it


def test_a_failing_statement_raises_psycopgs_error_and_runs_nothing_after_it(
    conn: psycopg.Connection, pg_url: str
) -> None:
    one = (_INSERT, (1, "a", None, None, None, None, None))
    with pytest.raises(errors.UniqueViolation) as caught:
        pgwire.round_trip(conn, [one, one, (_INSERT, (3, "c", None, None, None, None, None))],
                          commit=True)  # fmt: skip
    assert caught.value.diag.constraint_name == "wire_pkey"
    assert conn.pgconn.transaction_status == pq.TransactionStatus.INERROR  # COMMIT skipped
    conn.rollback()
    assert _count(pg_url) == 0
    pgwire.round_trip(conn, [one], commit=True)  # the connection is fine after the rollback
    assert _count(pg_url) == 1


def test_a_value_that_cannot_be_converted_fails_before_anything_is_sent(
    conn: psycopg.Connection, pg_url: str
) -> None:
    with pytest.raises(psycopg.ProgrammingError, match="cannot adapt"):
        pgwire.round_trip(conn, [(_INSERT, (1, "a", None, None, None, None, None)),
                                 (_INSERT, (2, object(), None, None, None, None, None))],
                          commit=True)  # fmt: skip
    assert conn.pgconn.transaction_status == pq.TransactionStatus.IDLE  # not even BEGIN
    assert _count(pg_url) == 0


def test_many_statements_and_a_large_value_go_in_one_round_trip(
    conn: psycopg.Connection, pg_url: str
) -> None:
    """More than a socket buffer of data (the sending side has to wait for the socket)."""
    big = "x" * 300_000
    rows = [(_INSERT, (i, big if i % 50 == 0 else str(i), None, None, Json({"i": i}), None,
                       None)) for i in range(500)]  # fmt: skip
    answer = pgwire.round_trip(conn, [*rows, (b"SELECT sum(length(name)) FROM wire", ())],
                               commit=True)  # fmt: skip
    expected = 10 * len(big) + sum(len(str(i)) for i in range(500) if i % 50)
    assert answer.rows(500) == [(expected,)] and answer.rowcount(499) == 1
    assert _count(pg_url) == 500
    doc = conn.execute("SELECT doc FROM wire WHERE id = 7").fetchone()
    assert doc is not None and json.dumps(doc[0]) == '{"i": 7}'


def test_a_lost_connection_raises_operational_error(conn: psycopg.Connection,
                                                    pg_url: str) -> None:  # fmt: skip
    pid = conn.info.backend_pid
    with psycopg.connect(_libpq(pg_url), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(psycopg.OperationalError):
        pgwire.round_trip(conn, [(_INSERT, (1, "a", datetime.now(UTC), None, None, None,
                                            None))], commit=True)  # fmt: skip
    assert conn.broken  # what SQLAlchemy's psycopg dialect reads as a disconnect


def _prepared_here(conn: psycopg.Connection) -> list[str]:
    """The named statements of this session, as the server lists them (ours only)."""
    with conn.cursor() as cur:  # a cursor of psycopg's own: prepare=False, nothing added
        cur.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'tutela_%%' "
                    "ORDER BY name", prepare=False)  # fmt: skip
        return [row[0] for row in cur.fetchall()]


def test_a_statement_is_parsed_once_per_connection_and_types(conn: psycopg.Connection) -> None:
    """The first round trip carries the Parse, later ones reuse the name; the same text with
    other parameter types (a value where there was NULL) is a statement of its own; both
    keep working."""
    pgwire.round_trip(conn, [(_INSERT, (1, "a", None, None, None, None, None)),
                             (_INSERT, (2, "b", None, None, None, None, None))])  # fmt: skip
    assert len(_prepared_here(conn)) == 1  # one Parse for both rows
    pgwire.round_trip(conn, [(_INSERT, (3, "c", None, None, None, None, None))], commit=True)
    assert len(_prepared_here(conn)) == 1  # reused, not parsed again
    pgwire.round_trip(conn, [(_INSERT, (4, "d", None, None, None, None, 0.5))], commit=True)
    assert len(_prepared_here(conn)) == 2  # a float where NULL was: other parameter types
    assert conn.execute("SELECT count(*) FROM wire").fetchone() == (4,)


def test_a_parse_skipped_after_an_error_is_parsed_next_time(conn: psycopg.Connection) -> None:
    """In a pipeline the server skips everything after a failing statement up to the Sync,
    Parse messages included: such a statement must not count as prepared."""
    one = (_INSERT, (1, "a", None, None, None, None, None))
    pgwire.round_trip(conn, [one], commit=True)
    later = (b"SELECT count(*) FROM wire WHERE id > $1", (0,))
    with pytest.raises(errors.UniqueViolation):
        pgwire.round_trip(conn, [one, later], commit=True)
    conn.rollback()
    assert len(_prepared_here(conn)) == 1  # the INSERT only
    assert pgwire.round_trip(conn, [later]).rows(0) == [(1,)]  # parsed now, and answered
    assert len(_prepared_here(conn)) == 2
    conn.rollback()


def test_past_the_limit_statements_go_unnamed(conn: psycopg.Connection,
                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setattr(pgwire, "MAX_PREPARED", 1)
    pgwire.round_trip(conn, [(_INSERT, (1, "a", None, None, None, None, None))])
    answer = pgwire.round_trip(conn, [(b"SELECT name FROM wire WHERE id = $1", (1,)),
                                      (_INSERT, (2, "b", None, None, None, None, None))],
                               commit=True)  # fmt: skip
    assert answer.rows(0) == [("a",)] and answer.rowcount(1) == 1
    assert len(_prepared_here(conn)) == 1


def test_an_autocommit_connection_gets_no_begin_and_no_commit(pg_url: str) -> None:
    """As with psycopg's cursors: each statement commits by itself, and no COMMIT is sent
    (it would draw the server's "no transaction in progress" warning)."""
    notices: list[str] = []
    with psycopg.connect(_libpq(pg_url), autocommit=True) as c:
        c.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        c.execute(_TABLE)
        pgwire.round_trip(c, [(_INSERT, (1, "a", None, None, None, None, None))], commit=True)
        assert c.pgconn.transaction_status == pq.TransactionStatus.IDLE
    assert _count(pg_url) == 1
    assert notices == []


def test_a_round_trip_interrupted_half_way_closes_the_connection(
    conn: psycopg.Connection, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sent, then interrupted before the results are read (an interpreter-level exception):
    libpq is left mid-pipeline, so the connection is closed, not handed out again; through
    the store the pool replaces it and the next batch runs on a fresh connection."""
    real = pgwire._exchange

    def interrupted(pgconn: PGconn) -> list[PGresult]:
        pgconn.flush()
        raise KeyboardInterrupt

    monkeypatch.setattr(pgwire, "_exchange", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pgwire.round_trip(conn, [(_INSERT, (1, "a", None, None, None, None, None))])
    assert conn.closed
    assert _count(pg_url) == 0  # the server rolled the open transaction back

    store = Store.open(pg_url)
    store.upgrade()
    one = Statements(store.engine)(_ONE)
    try:
        # the batch's rollback finds the connection closed: a 503, the store's "unavailable"
        with pytest.raises(StoreUnavailable), store.batch() as batch:
            one.first(batch.connection, {})
        monkeypatch.setattr(pgwire, "_exchange", real)
        with store.batch() as batch:
            assert one.first(batch.connection, {}) == (1,)
    finally:
        store.close()
