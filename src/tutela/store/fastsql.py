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

Use only for fixed, hot statements; everything else goes through SQLAlchemy as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Insert, Table, bindparam, insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import BindParameter

Processor = Callable[[Any], Any] | None


class Prepared:
    """One Core statement, compiled for one dialect, executed on the raw DBAPI cursor.

    Parameters are passed by name, as with SQLAlchemy; an INSERT must name every column it
    sets (``insert(t).values({c: bindparam(c), ...})``): Python-side column defaults are not
    applied on this path.
    """

    __slots__ = ("_binds", "_names", "_positional", "_results", "_returns", "_types", "dialect",
                 "sql")  # fmt: skip

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self.dialect = dialect
        self._positional = bool(compiled.positional)
        self._names: tuple[str, ...] = tuple(compiled.positiontup or compiled.binds)
        self._binds: dict[str, Processor] = {
            name: _bind_processor(bind.type, dialect) for name, bind in compiled.binds.items()
        }
        # a SELECT (or INSERT ... RETURNING): the result columns' types, in order; their
        # processors are made from the first result's driver type codes (some need them)
        columns = getattr(statement, "selected_columns", None)
        returning = getattr(statement, "_returning", None) or ()
        self._types = [c.type.dialect_impl(dialect)
                       for c in (columns if columns is not None else returning)]  # fmt: skip
        self._results: list[Processor] | None = None
        self._returns = bool(self._types)

    def _args(self, params: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        try:
            return self._convert_params(params)
        except KeyError as exc:  # a programming error: say which value is missing and why
            raise TypeError(
                f"prepared statement needs a value for {exc.args[0]!r} (an INSERT names every "
                "column it sets; Python-side column defaults are not applied on this path)"
            ) from None

    def _convert_params(self, params: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        binds = self._binds
        if self._positional:
            out = []
            for name in self._names:
                value = params[name]
                proc = binds[name]
                out.append(proc(value) if proc is not None and value is not None else value)
            return out
        return {
            name: (p(params[name]) if (p := binds[name]) is not None and params[name] is not None
                   else params[name])
            for name in self._names
        }

    def _converter(self, cursor: Any) -> list[Processor]:
        if self._results is None:
            self._results = [
                t.result_processor(self.dialect, d[1])
                for t, d in zip(self._types, cursor.description, strict=True)
            ]
        return self._results

    @staticmethod
    def _convert(procs: list[Processor], row: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            proc(value) if proc is not None else value
            for proc, value in zip(procs, row, strict=True)
        )

    def _run(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        args = self._args(params)
        driver = conn.connection.driver_connection
        cursor = driver.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self.sql, args)
        except self.dialect.loaded_dbapi.Error as exc:
            # as SQLAlchemy does: a lost connection is invalidated (the pool replaces it)
            # and the error says so, which the store reads as "database unavailable"
            lost = self.dialect.is_disconnect(exc, driver, cursor)
            cursor.close()
            if lost:
                conn.invalidate(exc)
            raise DBAPIError.instance(
                self.sql, args, exc, self.dialect.loaded_dbapi.Error,
                connection_invalidated=lost, dialect=self.dialect,
            ) from exc  # fmt: skip
        return cursor

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
            procs = self._converter(cursor)
            return [self._convert(procs, row) for row in cursor.fetchall()]
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


def _bind_processor(type_: Any, dialect: Dialect) -> Processor:
    """The type's bind processor; for date-times, with results shared (see :func:`_memo`)."""
    impl = type_.dialect_impl(dialect)
    proc = impl.bind_processor(dialect)
    if proc is None or not _is_datetime(type_):
        return proc
    # one cache per type and dialect: every column of that type converts alike
    cache = _TIME_CACHES.setdefault((repr(type_), type(type_), dialect.name), {})
    return _memo(proc, cache)


def _is_datetime(type_: Any) -> bool:
    """Whether the type stores ``datetime`` values (a TypeDecorator asks its ``impl``)."""
    for t in (type_, getattr(type_, "impl_instance", None)):
        try:
            if t is not None and issubclass(t.python_type, datetime):
                return True
        except NotImplementedError:
            continue
    return False


_MISS = object()
_TIME_CACHES: dict[tuple[str, type, str], dict[Any, Any]] = {}


def _memo(proc: Callable[[Any], Any], cache: dict[Any, Any]) -> Callable[[Any], Any]:
    """``proc`` with its recent results remembered in ``cache``. One check writes the same
    instant into several columns and statements (the attempt, the state, the action, the
    index entry), and SQLite's datetime conversion costs several µs each time. Keyed by the
    value and its UTC offset: equal instants in different zones are equal datetimes, but
    not the same text."""

    def run(value: Any) -> Any:
        key = (value, value.utcoffset())
        out = cache.get(key, _MISS)
        if out is _MISS:
            if len(cache) >= 256:
                cache.clear()
            out = cache[key] = proc(value)
        return out

    return run


def named(names: Iterable[str]) -> dict[str, BindParameter[Any]]:
    """``{name: bindparam(name)}``: the values clause of an INSERT or UPDATE run here."""
    return {n: bindparam(n) for n in names}


def insert_of(table: Table, names: Iterable[str] | None = None) -> Insert:
    """An INSERT of exactly ``names`` (default: every column of ``table``) as named
    parameters. The prepared path applies no Python-side column default, so an INSERT run
    through it names what it sets, and its caller passes a value for each."""
    return insert(table).values(named(table.c.keys() if names is None else names))


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
