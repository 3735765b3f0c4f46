"""A run of statements in one network round trip on PostgreSQL, through libpq's pipeline.

Why: a batch of prompt checks on PostgreSQL sends its writes nobody reads an answer from
together with the next statement that needs one, or with the COMMIT (store/fastsql.py, held
writes): two or three round trips per batch. Through psycopg's own pipeline mode
(``Connection.pipeline()``) each such round trip cost ~150-200 µs of the worker's CPU
against ~55 µs for a plain query, and every statement in it one more poll and send of its
own (~20 µs a row): its generators enter and leave pipeline mode, flush after each
statement and ask for a flush request before a Sync. Two round trips of a batch of 4 cost
~1,000 µs of CPU that way and ~250 µs here (``benchmarks/http_bench.py --breakdown``
measures the batch; issue 3).

What stays psycopg's: the libpq wrapper (:mod:`psycopg.pq`, its public low-level API), every
value's conversion in both directions (a :class:`psycopg.adapt.Transformer` on the
connection: the same dumpers and loaders, and formats, its cursors use), the error classes
(a failing statement raises what psycopg would raise for it), and the connection and its
transaction state, which are libpq's own: afterwards psycopg carries on with the connection
as if its cursors had run the statements. What is skipped: only psycopg's per-statement
machinery. All values are dumped first, so a value that cannot be converted fails before
anything is sent.

Each statement is prepared once per connection and parameter types (a named statement, as
psycopg prepares what it runs often): its first round trip on a connection carries the
Parse, later ones only Bind and Execute. Sent unnamed, every statement was parsed and
planned again by the server: ~100 µs more of the database's CPU per checked prompt, about
what was saved in the worker. A statement's name is kept only once the server has answered
its Parse (one skipped after an earlier error in the same round trip is parsed next time);
past :data:`MAX_PREPARED` per connection the rest go unnamed.

One round trip: pipeline mode on, BEGIN if no transaction is open (psycopg would send it
first, alone), every statement, COMMIT if asked, one Sync; then the results up to the Sync,
and pipeline mode off. The server runs them in order and, after a failing one, skips the
rest up to the Sync (the transaction is then in error; the caller rolls back as usual).
Waiting releases the interpreter (``select.poll``), so the worker's event loop runs
meanwhile. A round trip cut short after sending (the connection lost, or an exception such
as KeyboardInterrupt before every result was read) closes the connection: libpq's state is
then unknown, and SQLAlchemy's pool replaces a closed connection instead of handing it out.
"""

from __future__ import annotations

import itertools
import select
import weakref
from collections.abc import Sequence
from typing import Any

from psycopg import Connection, errors, pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq.abc import PGconn, PGresult

_IDLE = pq.TransactionStatus.IDLE
_SYNC = pq.ExecStatus.PIPELINE_SYNC
_FAILED = pq.ExecStatus.FATAL_ERROR
_OK = pq.ExecStatus.COMMAND_OK
_BEGIN = b"BEGIN"
_COMMIT = b"COMMIT"

MAX_PREPARED = 200
"""Named statements per connection at most (one per statement text and parameter types;
a check's hot path uses a dozen or so); beyond it a statement goes unnamed."""

_prepared: weakref.WeakKeyDictionary[Connection[Any], dict[tuple[bytes, tuple[int, ...]], bytes]]
_prepared = weakref.WeakKeyDictionary()
"""Per driver connection: the statements prepared on its server session, by text and
parameter types. Dropped with the connection (a replaced connection starts afresh)."""
_names = itertools.count(1)


class Results:
    """The answers to one round trip's statements, in the order sent (BEGIN and COMMIT
    left out), with their values converted as psycopg's cursors convert them."""

    __slots__ = ("_driver", "_results")

    def __init__(self, driver: Connection[Any], results: list[PGresult]) -> None:
        self._driver = driver
        self._results = results

    def rowcount(self, i: int) -> int:
        """Rows the ``i``-th statement returned or changed (an UPDATE's count)."""
        return int(self._results[i].command_tuples or 0)

    def type_codes(self, i: int) -> list[int]:
        """The ``i``-th statement's result columns' type OIDs (a cursor's ``description``
        type codes)."""
        res = self._results[i]
        return [res.ftype(n) for n in range(res.nfields)]

    def rows(self, i: int) -> list[tuple[Any, ...]]:
        """The ``i``-th statement's rows, each column loaded by psycopg's loader for it."""
        res = self._results[i]
        tx = Transformer(self._driver)
        tx.set_pgresult(res)
        return tx.load_rows(0, res.ntuples, tuple)


def round_trip(
    driver: Connection[Any],
    statements: Sequence[tuple[bytes, Sequence[Any]]],
    *,
    commit: bool = False,
) -> Results:
    """Run ``statements`` (SQL with ``$n`` placeholders, and their values in that order) on
    ``driver`` in one round trip, inside its transaction (begun first if none is open,
    unless the connection is in autocommit mode), with the COMMIT after them if ``commit``.
    Raises what psycopg raises: the first failing statement's error (:mod:`psycopg.errors`),
    :class:`psycopg.OperationalError` when the connection is lost."""
    tx = Transformer(driver)
    known = _prepared.setdefault(driver, {})
    fresh: dict[tuple[bytes, tuple[int, ...]], bytes] = {}  # named in this round trip
    sends = []
    for sql, values in statements:  # every value dumped before anything is sent
        params = tx.dump_sequence(values, [PyFormat.AUTO] * len(values))
        types = tuple(tx.types)
        name = known.get((sql, types)) or fresh.get((sql, types))
        parse = name is None and len(known) + len(fresh) < MAX_PREPARED
        if parse:  # its first use: the Parse goes just before it
            name = fresh[sql, types] = b"tutela_%d" % next(_names)
        sends.append((sql, params, types, tx.formats, name, parse))
    pgconn = driver.pgconn
    # as psycopg does: a transaction is begun unless the connection is in autocommit mode
    begin = not driver.autocommit and pgconn.transaction_status == _IDLE
    commit = commit and not driver.autocommit  # each statement committed itself
    parses: list[tuple[int, tuple[bytes, tuple[int, ...]], bytes]] = []  # (result index, ...)
    answers: list[int] = []  # result index of each statement's answer
    sent = int(begin)
    pgconn.enter_pipeline_mode()
    try:
        if begin:
            pgconn.send_query_params(_BEGIN, None)
        for sql, params, types, formats, name, parse in sends:
            if parse:
                pgconn.send_prepare(name, sql, types)
                parses.append((sent, (sql, types), name))
                sent += 1
            if name is None:
                pgconn.send_query_params(sql, params, types, formats)
            else:
                pgconn.send_query_prepared(name, params, formats)
            answers.append(sent)
            sent += 1
        if commit:
            pgconn.send_query_params(_COMMIT, None)
        pgconn.pipeline_sync()
        results = _exchange(pgconn)
    except BaseException:
        # lost, or interrupted half-way (results left unread): the protocol's state is
        # unknown, so the connection is closed, and SQLAlchemy's pool, seeing it closed,
        # replaces it rather than handing it out again
        driver.close()
        raise
    pgconn.exit_pipeline_mode()
    for i, key, name in parses:  # parsed: usable from now on (a skipped Parse is not)
        if results[i].status == _OK:
            known[key] = name
    error = next((r for r in results if r.status == _FAILED), None)
    if error is not None:
        raise errors.error_from_result(error, encoding=driver.info.encoding)
    return Results(driver, [results[i] for i in answers])


def _exchange(pgconn: PGconn) -> list[PGresult]:
    """Send what libpq holds and collect every result up to the Sync."""
    poller = select.poll()
    poller.register(pgconn.socket, select.POLLIN | select.POLLOUT)
    while pgconn.flush():  # 1: more to send once the socket takes it
        if any(events & select.POLLIN for _, events in poller.poll()):
            pgconn.consume_input()  # the server may wait for us to read before it reads on
    poller.modify(pgconn.socket, select.POLLIN)
    results: list[PGresult] = []
    while True:
        while pgconn.is_busy():
            poller.poll()
            pgconn.consume_input()
        res = pgconn.get_result()
        if res is None:  # the end of one statement's results
            continue
        if res.status == _SYNC:
            return results
        results.append(res)
