"""The prepared-statement path gives what SQLAlchemy gives, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import String, bindparam, create_engine, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from tutela.accounts.tables import AccountRow, ActionRow
from tutela.store.database import Store
from tutela.store.fastsql import Prepared, Statements

_acc = AccountRow.__table__
_act = ActionRow.__table__
COLUMNS = ["id", "age_tier", "risk", "risk_at", "strikes", "action", "report",
           "created_at", "updated_at"]  # fmt: skip
INSERT = insert(_acc).values({c: bindparam(c) for c in COLUMNS})
LOAD = select(_acc.c.id, _acc.c.risk_at, _acc.c.strikes, _acc.c.report).where(
    _acc.c.id == bindparam("account_id")
)


def _values(account: str, at: datetime) -> dict[str, object]:
    return {"id": account, "age_tier": "unknown", "risk": 1.5, "risk_at": at,
            "strikes": {"sexual_minors": 2}, "action": "warn", "report": True,
            "created_at": at, "updated_at": at}  # fmt: skip


def test_round_trip_matches_sqlalchemy(store: Store) -> None:
    store.upgrade()
    prepared = Statements(store.engine)
    at = datetime(2026, 3, 1, 12, 30, tzinfo=UTC) + timedelta(microseconds=7)
    with store.engine.begin() as conn:
        prepared(INSERT).execute(conn, _values("fast", at))
        conn.execute(insert(_acc), _values("core", at))
    with store.engine.connect() as conn:
        fast = prepared(LOAD).first(conn, {"account_id": "core"})
        core = conn.execute(LOAD, {"account_id": "fast"}).one()
        missing = prepared(LOAD).first(conn, {"account_id": "nobody"})
    # written by one path, read by the other: the same values, times aware UTC
    assert fast == ("core", at, {"sexual_minors": 2}, True)
    assert tuple(core) == ("fast", at, {"sexual_minors": 2}, True)
    assert missing is None


def test_insert_returns_the_new_key(store: Store) -> None:
    store.upgrade()
    at = datetime(2026, 3, 1, tzinfo=UTC)
    cols = ["account_id", "at", "action", "until", "reason", "actor", "report"]
    stmt = insert(_act).values({c: bindparam(c) for c in cols})
    if store.dialect == "postgresql":
        stmt = stmt.returning(_act.c.id)
    p = Prepared(stmt, store.engine.dialect)
    with store.engine.begin() as conn:
        Statements(store.engine)(INSERT).execute(conn, _values("a", at))
        row = {"account_id": "a", "at": at, "action": "warn", "until": None,
               "reason": "r", "actor": "ladder", "report": False}  # fmt: skip
        first, second = p.insert(conn, row), p.insert(conn, row)
    assert second == first + 1


def test_driver_errors_are_wrapped_like_sqlalchemy(store: Store) -> None:
    store.upgrade()
    at = datetime(2026, 3, 1, tzinfo=UTC)
    p = Statements(store.engine)(INSERT)
    with store.engine.begin() as conn:
        p.execute(conn, _values("dup", at))
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        p.execute(conn, _values("dup", at))


def test_rolled_back_with_its_transaction(store: Store) -> None:
    store.upgrade()
    at = datetime(2026, 3, 1, tzinfo=UTC)
    p = Statements(store.engine)
    with store.engine.connect() as conn:
        with conn.begin() as tx:
            p(INSERT).execute(conn, _values("gone", at))
            tx.rollback()
        assert p(LOAD).first(conn, {"account_id": "gone"}) is None


def test_a_lost_connection_is_invalidated_like_sqlalchemy_does(store: Store) -> None:
    """PostgreSQL only: the server ends the session; the error says the connection is gone
    (the store's "database unavailable"), and the pool hands out a fresh one next time."""
    if store.dialect != "postgresql":
        pytest.skip("a server-side disconnect needs a server")
    store.upgrade()
    p = Statements(store.engine)(LOAD)
    with store.engine.connect() as victim:
        pid = victim.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with store.engine.connect() as other:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        with pytest.raises(OperationalError) as caught:
            p.first(victim, {"account_id": "x"})
        assert caught.value.connection_invalidated
        assert victim.invalidated
    with store.engine.connect() as fresh:
        assert p.first(fresh, {"account_id": "x"}) is None


def test_a_connection_is_pinged_only_after_sitting_idle(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a connection returned a moment ago is handed out without a ping; one idle
    longer than PING_AFTER_IDLE_SECONDS is pinged, and if the server ended its session it is
    replaced by a fresh one before anyone uses it."""
    from tutela.store import db

    if store.dialect != "postgresql":
        pytest.skip("SQLite connections are not pinged")
    pings: list[int] = []
    real = store.engine.dialect.do_ping
    monkeypatch.setattr(store.engine.dialect, "do_ping",
                        lambda c: pings.append(1) or real(c))  # fmt: skip
    with store.engine.connect() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    pings.clear()
    for _ in range(3):  # back-to-back checkouts, as a loaded worker makes them
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() == pid
    assert pings == []
    killer = create_engine(store.engine.url)  # the server ends the pooled session meanwhile
    with killer.connect() as other:
        other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
    killer.dispose()
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # as if it sat idle since
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid
    assert pings


def test_remembered_time_conversions_keep_zones_apart(store: Store) -> None:
    """The same instant in two zones, and the same wall time in two zones, each stored as
    its own instant (the conversion cache is keyed by value and offset)."""
    from datetime import timezone

    store.upgrade()
    prepared = Statements(store.engine)
    plus2 = timezone(timedelta(hours=2))
    noon_utc = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    cases = {
        "utc": noon_utc,
        "same-instant": noon_utc.astimezone(plus2),  # 14:00+02:00
        "same-wall-time": datetime(2026, 3, 1, 12, 0, tzinfo=plus2),  # 10:00 UTC
    }
    with store.engine.begin() as conn:
        for account, at in cases.items():
            prepared(INSERT).execute(conn, _values(account, at))
    with store.engine.connect() as conn:
        for account, at in cases.items():
            row = prepared(LOAD).first(conn, {"account_id": account})
            assert row is not None and row[1] == at and row[1].utcoffset() == timedelta(0)


def test_a_missing_value_is_named(store: Store) -> None:
    """An INSERT of a column whose value was not given (a Python-side default does not run
    here) fails before the database with the column's name."""
    store.upgrade()
    with pytest.raises(TypeError, match="'risk_at'"), store.engine.begin() as conn:
        values = _values("x", datetime(2026, 3, 1, tzinfo=UTC))
        del values["risk_at"]
        Statements(store.engine)(INSERT).execute(conn, values)


JSON_VALUES: list[object] = [
    {"sexual_minors": 2},
    {},
    [],
    {"é": "naïve ✓ 子供 \U0001f600", "quote\"back\\slash": "\n\t\x00\x1f\x7f\u2028"},
    {"none": None, "nested": [None, {"x": None}]},  # a null: json.dumps writes it
    {"tiny": 1e-7, "small": 5.2e-05, "big": 1e16, "huge": 1.7976931348623157e308},
    {"int64": 2**63 - 1, "beyond": 2**70, "negative": -(2**64)},
    {"bool": [True, False], "tuple": (1, 2), "float": 0.9, "neg": -0.0},
    [{"detector": "prompt_lexicon", "kind": "minor", "score": 0.95,
      "evidence": {"terms": [{"as_written": "child", "lang": "en"}]}}],
    {"deep": [[[[[[[[[[[[{"x": 1}]]]]]]]]]]]]},
]  # fmt: skip


def test_json_values_parse_to_what_sqlalchemy_stores(store: Store) -> None:
    """A JSON parameter is serialised by orjson on the prepared path (json.dumps where
    orjson could differ): the stored text parses to the same data as SQLAlchemy's own."""
    import json
    import math

    store.upgrade()
    prepared = Statements(store.engine)
    at = datetime(2026, 3, 1, tzinfo=UTC)
    values = list(JSON_VALUES)
    if store.dialect == "sqlite":  # json.dumps' NaN: PostgreSQL's json refuses it either way
        values.append({"nan": math.nan, "inf": math.inf})
    raw = select(_acc.c.strikes.cast(String)) if store.dialect == "postgresql" else None
    for i, value in enumerate(values):
        with store.engine.begin() as conn:
            prepared(INSERT).execute(conn, {**_values(f"fast-{i}", at), "strikes": value})
            conn.execute(insert(_acc), {**_values(f"core-{i}", at), "strikes": value})
        with store.engine.connect() as conn:
            texts = []
            for who in ("fast", "core"):
                if raw is None:
                    q = text("SELECT strikes FROM account_state WHERE id = :id")
                else:
                    q = raw.where(_acc.c.id == bindparam("id"))
                texts.append(conn.execute(q, {"id": f"{who}-{i}"}).scalar_one())
            read = prepared(LOAD).first(conn, {"account_id": f"fast-{i}"})
        fast, core = (json.loads(t) for t in texts)
        expected = json.loads(json.dumps(value))
        assert repr(fast) == repr(core) == repr(expected)  # repr: NaN is not equal to itself
        assert read is not None and repr(read[2]) == repr(expected)


def test_orjson_is_used_only_where_its_data_is_jsons() -> None:
    """What the JSON processor hands to orjson and what it keeps for json.dumps."""
    import math

    from tutela.store.fastsql import _json_text

    assert _json_text(JSON_VALUES[8]) is not None  # a decision's signals: the fast path
    assert _json_text({"k": "✓"}) == '{"k":"✓"}'.encode()
    for slow in ({"none": None}, {"nan": math.nan}, {"beyond": 2**70}, {1: "int key"},
                 {"at": datetime(2026, 3, 1, tzinfo=UTC)}):  # fmt: skip
        assert _json_text(slow) is None
