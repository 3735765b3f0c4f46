"""Prepared statements for the check's hot path: SQLAlchemy compiles, the driver executes.

Why: a prompt check stores its decision, its audit-log leaf and, after a block, account
state. Through ``Connection.execute`` each statement costs 30-60 µs of SQLAlchemy's own
bookkeeping (execution context, cache-key lookup, result proxy) against 3-10 µs of work in
SQLite itself, and those statements were most of a check's cost (issues 3 and 5).

What stays SQLAlchemy's: the SQL text (compiled once per dialect from the same Core
statement and tables the rest of the code uses), the parameter style, every column type's
conversion in both directions (``bind_processor`` / ``result_processor``: UTC datetimes on
SQLite, JSON, booleans) and the error classes (driver errors are wrapped exactly as
SQLAlchemy wraps them, so ``OperationalError`` still means "database unavailable" to the
store's fail-closed handling). What is skipped: only the per-call machinery. The statement
runs on the connection's own transaction, so it commits or rolls back with the rest.

Two conversions are made cheaper, with the same results: date-times are remembered per
value (one check writes and reads the same instants over and over, and each conversion
costs µs), and JSON parameters of a plain JSON column are serialised by orjson (see
:func:`_json_text`) rather than ``json.dumps``: the text differs in spacing and escaping
only, it parses to the same data, and anything orjson would render differently goes to
``json.dumps`` as before.

Use only for fixed, hot statements; everything else goes through SQLAlchemy as usual.

Held writes (PostgreSQL, inside a store batch): a statement whose answer nobody reads (the
decision's INSERT, the audit leaf's) is sent with :meth:`Prepared.send`. While a batch holds
writes on its connection (:func:`open_batch`), ``send`` only queues the statement; the queue
goes to the server in one pipeline (libpq's pipeline mode: every statement sent, one
network round trip for all; :mod:`tutela.store.pgwire`) together with the next statement
that needs an answer, or at the batch's end (:func:`flush`). A check on PostgreSQL used to
wait for each of its statements in turn, and each wait handed the worker's interpreter to
another thread and back. The server still runs the statements in the order they were sent;
a held statement that fails raises at that flush, the batch rolls back and its checks run
again (``Guard.check_prompts``). SQLite has no round trips to save: there ``send`` runs at
once. Inside a batch on PostgreSQL every prepared statement takes that path (a round trip
of its own when nothing is held and the transaction is open); outside one, and for
whatever SQLAlchemy runs, psycopg's cursor as usual.

A held statement may also carry a ``check`` of its answer (``send(..., check=...)``): a
read whose rows confirm something the batch assumed (account rows remembered from earlier
batches, ``accounts/cache.py``). The check runs when the round trip carrying it returns,
before that round trip's own caller goes on, and may raise to fail the batch. A COMMIT never
travels with an unchecked answer: :func:`flush` then sends the held statements first and
the COMMIT in a round trip of its own, once the check has passed.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, NoReturn

import orjson
from sqlalchemy import JSON, Engine, Insert, Table, bindparam, event, insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import BindParameter

from tutela.instants import by_instant, by_text
from tutela.store import pgwire

Processor = Callable[[Any], Any] | None
Check = Callable[[list[tuple[Any, ...]]], None]
"""What :meth:`Prepared.send` may hand a held statement's rows to when they arrive."""

_HELD = "tutela.held_writes"
"""``Connection.info`` key: the statements :meth:`Prepared.send` queued in an open batch."""
_SCOPE = "tutela.batch_scope"
"""``Connection.info`` key: what repositories remember for the length of a batch."""
_IDLE = 0  # libpq's PQTRANS_IDLE: no transaction begun on the connection


class Prepared:
    """One Core statement, compiled for one dialect, executed on the raw DBAPI cursor.

    Parameters are passed by name, as with SQLAlchemy; an INSERT must name every column it
    sets (``insert(t).values({c: bindparam(c), ...})``): Python-side column defaults are not
    applied on this path.
    """

    __slots__ = ("_binds", "_get", "_holds", "_names", "_positional", "_result_types",
                 "_results", "_returns", "_wire", "dialect", "sql")  # fmt: skip

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self.dialect = dialect
        self._holds = holds_writes(dialect)  # whether a batch may hold writes back (see send)
        # where writes are held, the form a batch's round trip sends (store/pgwire.py):
        # ``$n`` placeholders and the names of its values in that order (empty elsewhere)
        self._wire = _wire_form(statement, dialect) if self._holds else (b"", ())
        self._positional = bool(compiled.positional)
        names: tuple[str, ...] = tuple(compiled.positiontup or compiled.binds)
        self._names = names
        # the values in statement order, by one C call (a KeyError names a missing one)
        self._get: Callable[[Mapping[str, Any]], tuple[Any, ...]] = (
            itemgetter(*names) if len(names) > 1
            else (lambda params, _n=names[0]: (params[_n],)) if names
            else (lambda params: ())
        )  # fmt: skip
        # (position, processor) of the values that need converting; the others pass as given
        procs = {name: _bind_processor(bind.type, dialect) for name, bind in compiled.binds.items()}
        self._binds: tuple[tuple[int, Callable[[Any], Any]], ...] = tuple(
            (i, proc) for i, name in enumerate(names) if (proc := procs[name]) is not None
        )
        # a SELECT (or INSERT ... RETURNING): the result columns' types, in order; their
        # processors are made from the first result's driver type codes (some need them)
        columns = getattr(statement, "selected_columns", None)
        returning = getattr(statement, "_returning", None) or ()
        self._result_types = [c.type for c in (columns if columns is not None else returning)]
        self._results: tuple[tuple[int, Callable[[Any], Any]], ...] | None = None
        self._returns = bool(self._result_types)

    def _args(self, params: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        try:
            return self._convert_params(params)
        except KeyError as exc:  # a programming error: say which value is missing and why
            raise TypeError(
                f"prepared statement needs a value for {exc.args[0]!r} (an INSERT names every "
                "column it sets; Python-side column defaults are not applied on this path)"
            ) from None

    def _convert_params(self, params: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        values = self._get(params)
        if self._binds:
            values = list(values)  # type: ignore[assignment]
            for i, proc in self._binds:
                value = values[i]
                if value is not None:
                    values[i] = proc(value)  # type: ignore[index]
        if self._positional:
            return values
        return dict(zip(self._names, values, strict=True))

    def _converter(self, cursor: Any) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
        if self._results is None:
            codes = (cursor.type_codes if isinstance(cursor, _Answer)
                     else [d[1] for d in cursor.description])  # fmt: skip
            self._results = tuple(
                (i, proc)
                for i, (t, code) in enumerate(zip(self._result_types, codes, strict=True))
                if (proc := _result_processor(t, self.dialect, code)) is not None
            )
        return self._results

    @staticmethod
    def _convert(
        procs: tuple[tuple[int, Callable[[Any], Any]], ...], row: Sequence[Any]
    ) -> tuple[Any, ...]:
        """The row with each converted column's processor applied (to None too, as
        SQLAlchemy does: a type may give None a meaning)."""
        if not procs:
            return tuple(row)
        out = list(row)
        for i, proc in procs:
            out[i] = proc(out[i])
        return tuple(out)

    def wire(self, args: Mapping[str, Any]) -> tuple[bytes, list[Any]]:
        """The statement as a batch's round trip sends it (store/pgwire.py): its ``$n`` form
        and ``args`` (as :meth:`_args` made them) in that order."""
        sql, order = self._wire
        return sql, [args[name] for name in order]

    def _run(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """The statement run: a driver cursor, or inside a batch on PostgreSQL an
        :class:`_Answer` (the same few cursor methods) from its round trip, which carries
        the held writes before it."""
        args = self._args(params)
        # the DBAPI connection (for a sync driver, the driver's own): an attribute of the
        # pool's proxy, where driver_connection asks the pool's dialect each time
        driver = conn.connection.dbapi_connection
        held = conn.info.get(_HELD) if self._holds else None
        if held is not None:
            # in a batch: the held writes go first, in this statement's round trip; so does
            # the BEGIN of a transaction not yet begun (psycopg would send it alone first)
            return _Answer(_round_trip(conn, driver, [*_take(held), (self, args, None)]))
        cursor = driver.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self.sql, args)
        except self.dialect.loaded_dbapi.Error as exc:
            cursor.close()
            _raise_wrapped(conn, driver, exc, self.sql, args)
        return cursor

    def send(self, conn: Connection, params: Mapping[str, Any], *,
             check: Check | None = None) -> None:  # fmt: skip
        """Run a statement whose answer its caller does not wait for (an INSERT of a row),
        now or, while a batch holds writes on ``conn`` (PostgreSQL), with the batch's next
        round trip.

        Its values are checked and converted now, so a missing one fails here, at its
        caller; a database error (a duplicate key) surfaces when the queue is sent, fails
        the batch and rolls it back whole. Nothing a caller could read depends on it
        before then: every statement on the connection sends the queue first.

        ``check``: called with the statement's rows (converted, as :meth:`all` returns
        them) when its answer arrives, before anything else runs on the connection; what
        it raises fails that round trip's caller, and with it the batch. A held check never
        shares its round trip with the COMMIT (:func:`flush`).
        """
        held = conn.info.get(_HELD) if self._holds else None
        if held is not None:
            held.append((self, self._args(params), check))
        elif check is not None:
            check(self.all(conn, params))
        else:
            self._run(conn, params).close()

    def _rows(self, cursor: Any) -> list[tuple[Any, ...]]:
        """Every row of ``cursor`` (a driver cursor or an :class:`_Answer`), converted by
        the columns' types."""
        procs = self._converter(cursor)
        return [self._convert(procs, row) for row in cursor.fetchall()]

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run a statement that returns no rows; the row count (or, on SQLite, an INSERT's
        ``lastrowid`` when the statement has no RETURNING: see :meth:`insert`)."""
        cursor = self._run(conn, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def insert(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run an INSERT and return the new row's integer primary key: from ``RETURNING``
        when the statement has it (PostgreSQL), else the driver's ``lastrowid`` (SQLite)."""
        cursor = self._run(conn, params)
        try:
            if self._returns:
                return int(cursor.fetchone()[0])
            return int(cursor.lastrowid)
        finally:
            cursor.close()

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run a SELECT; every row, converted by the columns' types."""
        cursor = self._run(conn, params)
        try:
            return self._rows(cursor)
        finally:
            cursor.close()

    def first(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run a SELECT; the first row, converted, or None."""
        cursor = self._run(conn, params)
        try:
            row = cursor.fetchone()
            return None if row is None else self._convert(self._converter(cursor), row)
        finally:
            cursor.close()


_Held = tuple[Prepared, Any, Check | None]
"""A held statement: what it is, its values (as :meth:`Prepared._args` made them), and the
check its answer goes to (None: nobody reads it)."""


def holds_writes(dialect: Dialect) -> bool:
    """Whether a batch on ``dialect`` holds writes back for one round trip: psycopg (its
    pipeline mode) on PostgreSQL. Elsewhere (SQLite, in-process) a write costs no wait."""
    return dialect.name == "postgresql" and dialect.driver == "psycopg"


def open_batch(conn: Connection) -> dict[Any, Any]:
    """Start a batch's scope on ``conn``: from now on :meth:`Prepared.send` holds writes
    back where the dialect allows it, and repositories may remember things for the batch's
    length in its memo (:func:`batch_memo`). Returns the connection's ``info``, for
    :func:`close_batch` (which must work on a connection lost meanwhile)."""
    info = conn.info
    if holds_writes(conn.dialect):
        info[_HELD] = []
    info[_SCOPE] = {}
    return info


def batch_memo(conn: Connection) -> dict[str, Any] | None:
    """The open batch's memo on ``conn`` (:func:`open_batch`), or None outside a batch."""
    memo: dict[str, Any] | None = conn.info.get(_SCOPE)
    return memo


def close_batch(info: dict[Any, Any]) -> None:
    """End the batch's scope (``info``, as :func:`open_batch` returned it): held writes not
    yet sent are dropped (call :func:`flush` first to keep them; a batch that failed rolls
    back without them)."""
    info.pop(_HELD, None)
    info.pop(_SCOPE, None)


def flush(conn: Connection, *, commit: bool = False) -> None:
    """Send the writes held on ``conn`` now, in one round trip; raise what the first failing
    one raised (wrapped as SQLAlchemy wraps driver errors).

    ``commit``: the transaction's COMMIT goes in the same round trip (a batch's end, once
    nothing else is left to run in it). The ``Connection`` still commits afterwards as
    usual, which the driver answers without a round trip, the transaction being over.
    Only where writes are held (:func:`holds_writes`); elsewhere nothing is sent here.
    """
    held = conn.info.get(_HELD)
    if held is None:
        return
    driver = conn.connection.dbapi_connection
    if not held and (not commit or _idle(driver)):
        return  # nothing to send, or nothing begun to commit
    queued = _take(held)
    if commit and any(check is not None for _, _, check in queued):
        # an answer still to be checked: the COMMIT waits for the check to pass
        _round_trip(conn, driver, queued)
        queued = []
    _round_trip(conn, driver, queued, commit=commit)


def flush_before_statements(engine: Engine) -> None:
    """Make every statement SQLAlchemy runs on ``engine`` send the held writes first, so
    whatever the ORM or Core reads or writes in a batch sees them, in order."""
    if not holds_writes(engine.dialect) or event.contains(
        engine, "before_cursor_execute", _flush_held
    ):
        return
    event.listen(engine, "before_cursor_execute", _flush_held)


def _flush_held(conn: Connection, *_: Any) -> None:
    if conn.info.get(_HELD):
        flush(conn)


def _idle(driver: Any) -> bool:
    """Whether no transaction has begun on the (psycopg) connection ``driver``."""
    return bool(driver.pgconn.transaction_status == _IDLE)


def _take(held: list[_Held]) -> list[_Held]:
    """Everything ``held`` queued, leaving it empty (what is taken is sent or lost with the
    batch's rollback, never sent twice)."""
    queued = held[:]
    held.clear()
    return queued


def _round_trip(
    conn: Connection, driver: Any, queued: list[_Held], *, commit: bool = False
) -> pgwire.Results:
    """Run ``queued`` (and the COMMIT, if ``commit``) in one round trip (store/pgwire.py),
    then the checks of the answers that carry one, in order; a driver error is raised as
    SQLAlchemy would raise it (:func:`_raise_wrapped`)."""
    try:
        results = pgwire.round_trip(
            driver, [p.wire(args) for p, args, _ in queued], commit=commit
        )
    except conn.dialect.loaded_dbapi.Error as exc:
        sql = "; ".join([*dict.fromkeys(p.sql for p, _, _ in queued), *(["COMMIT"] * commit)])
        _raise_wrapped(conn, driver, exc, sql, None)
    for index, (p, _, check) in enumerate(queued):
        if check is not None:
            check(p._rows(_Answer(results, index)))
    return results


class _Answer:
    """One statement's answer in a round trip (:func:`_round_trip`; by default its last
    statement's) as the few cursor methods :class:`Prepared` uses: its row count and its
    rows, converted by psycopg's loaders."""

    __slots__ = ("_index", "_results", "_rows")

    def __init__(self, results: pgwire.Results, index: int = -1) -> None:
        self._results = results
        self._index = index
        self._rows: list[tuple[Any, ...]] | None = None

    @property
    def rowcount(self) -> int:
        return self._results.rowcount(self._index)

    @property
    def type_codes(self) -> list[int]:
        """Its result columns' type OIDs (what a cursor's ``description`` carries)."""
        return self._results.type_codes(self._index)

    def fetchall(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            self._rows = self._results.rows(self._index)
        rows, self._rows = self._rows, []
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self.fetchall()
        return rows[0] if rows else None

    def close(self) -> None:
        self._rows = []


def _wire_form(statement: ClauseElement, dialect: Dialect) -> tuple[bytes, tuple[str, ...]]:
    """``statement`` compiled with ``$n`` placeholders (SQLAlchemy's ``numeric_dollar``
    style, on a copy of ``dialect``), and the names of its values in that order."""
    numbered = copy.copy(dialect)
    numbered.paramstyle = "numeric_dollar"
    numbered.positional = True
    compiled = statement.compile(dialect=numbered)
    return str(compiled).encode(), tuple(compiled.positiontup or ())


def _raise_wrapped(
    conn: Connection, driver: Any, exc: Exception, sql: str, args: Any
) -> NoReturn:
    """Raise ``exc`` as SQLAlchemy would: a lost connection is invalidated (the pool
    replaces it) and the error says so, which the store reads as "database unavailable"."""
    dialect = conn.dialect
    lost = dialect.is_disconnect(exc, driver, None)
    if lost:
        conn.invalidate(exc)
    raise DBAPIError.instance(
        sql, args, exc, dialect.loaded_dbapi.Error, connection_invalidated=lost,
        dialect=dialect,
    ) from exc  # fmt: skip


def _bind_processor(type_: Any, dialect: Dialect) -> Processor:
    """The type's bind processor; for date-times with results remembered (tutela/instants.py),
    for a plain JSON column serialising with orjson (see :func:`_json_bind`)."""
    impl = type_.dialect_impl(dialect)
    proc = impl.bind_processor(dialect)
    if proc is None:
        return None
    if _is_datetime(type_):
        # one memory per type and dialect: every column of that type converts alike
        key = ("bind", repr(type_), type(type_), dialect.name)
        if key not in _TIME_PROCS:
            _TIME_PROCS[key] = by_instant(proc)
        return _TIME_PROCS[key]
    if isinstance(impl, JSON):
        return _json_bind(proc, dialect)
    return proc


def _result_processor(type_: Any, dialect: Dialect, coltype: Any) -> Processor:
    """The type's result processor; for date-times read as text (SQLite), remembered per
    text: a check reads back the instants its account's earlier checks wrote, often the
    same one in several columns, and each parse (plus a TypeDecorator's zone) costs µs."""
    proc = type_.dialect_impl(dialect).result_processor(dialect, coltype)
    if proc is None or not _is_datetime(type_):
        return proc
    key = ("result", repr(type_), type(type_), dialect.name)
    if key not in _TIME_PROCS:
        _TIME_PROCS[key] = by_text(proc)
    return _TIME_PROCS[key]


def _is_datetime(type_: Any) -> bool:
    """Whether the type stores ``datetime`` values (a TypeDecorator asks its ``impl``)."""
    for t in (type_, getattr(type_, "impl_instance", None)):
        try:
            if t is not None and issubclass(t.python_type, datetime):
                return True
        except NotImplementedError:
            continue
    return False


_TIME_PROCS: dict[tuple[str, str, type, str], Callable[[Any], Any]] = {}
"""Date-time processors with their results remembered (tutela/instants.py), per type and
dialect."""


def _json_text(value: Any) -> bytes | None:
    """``value`` as JSON by orjson, or None where its data could differ from json.dumps'.

    orjson writes compact UTF-8 where ``json.dumps`` writes spaced ASCII with escapes, and
    both parse back to the same data, with these exceptions, all sent to ``json.dumps``:
    non-finite floats (orjson writes ``null``, json ``NaN``; every output holding ``null``
    is refused, the price being that data with a None in it takes the old path), integers
    beyond 64 bits, non-string keys, str/int/dict/list subclasses and date-times or
    dataclasses (orjson raises for all of these under the options here, so ``json.dumps``
    raises or converts exactly as before). Enums and UUIDs are the one widening: orjson
    writes their value where ``json.dumps`` raises TypeError.
    """
    try:
        out = orjson.dumps(value, option=_ORJSON_STRICT)
    except orjson.JSONEncodeError:
        return None
    return None if b"null" in out else out


_ORJSON_STRICT = (
    orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)  # fmt: skip


def _json_bind(proc: Callable[[Any], Any], dialect: Dialect) -> Callable[[Any], Any]:
    """A JSON column's bind processor serialising a dict or list with orjson
    (:func:`_json_text`), where SQLAlchemy's would call ``json.dumps``: the decisions'
    categories, reasons and signals are three JSON values per check, and ``json.dumps``
    costs several µs each. Only where the engine has no serializer of its own, for SQLite
    (the processor's output is the JSON text) and psycopg (a ``Json`` wrapper, given the
    text by its ``dumps``); any other value (the JSON null sentinel, a scalar) and any
    other dialect keeps SQLAlchemy's processor."""
    if getattr(dialect, "_json_serializer", None) is not None:
        return proc
    if dialect.name == "sqlite":

        def sqlite(value: Any) -> Any:
            if type(value) is dict or type(value) is list:
                out = _json_text(value)
                if out is not None:
                    return out.decode()
            return proc(value)

        return sqlite
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        from psycopg.types.json import Json

        def dumps(value: Any) -> bytes | str:
            out = _json_text(value)
            return out if out is not None else json.dumps(value)

        def psycopg(value: Any) -> Any:
            if type(value) is dict or type(value) is list:
                return Json(value, dumps)
            return proc(value)

        return psycopg
    return proc


def named(names: Iterable[str]) -> dict[str, BindParameter[Any]]:
    """``{name: bindparam(name)}``: the values clause of an INSERT or UPDATE run here."""
    return {n: bindparam(n) for n in names}


def insert_of(table: Table, names: Iterable[str] | None = None) -> Insert:
    """An INSERT of exactly ``names`` (default: every column of ``table``) as named
    parameters. The prepared path applies no Python-side column default, so an INSERT run
    through it names what it sets, and its caller passes a value for each.

    Inline: on PostgreSQL SQLAlchemy would otherwise add ``RETURNING id`` for a generated
    key that :meth:`Prepared.insert` never reads from there (it reads only a RETURNING
    asked for with ``.returning()``, which still works)."""
    return insert(table).values(named(table.c.keys() if names is None else names)).inline()


class Statements:
    """Prepared forms of a module's hot statements for one engine, compiled on first use."""

    def __init__(self, engine: Engine) -> None:
        self._dialect = engine.dialect
        # keyed by identity; the statement is kept so its id cannot be reused by another
        self._cache: dict[int, tuple[ClauseElement, Prepared]] = {}

    def __call__(self, statement: ClauseElement) -> Prepared:
        entry = self._cache.get(id(statement))
        if entry is None:
            entry = self._cache[id(statement)] = (statement, Prepared(statement, self._dialect))
        return entry[1]
