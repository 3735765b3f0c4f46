"""Group commit: concurrent decision writes share one transaction and one commit.

Every answer waits for its decision to be committed, and a commit is the expensive part of a
write (an fsync on PostgreSQL; the audit log's append lock is held until it). When many
requests arrive together, the first thread to reach the commit lock becomes the *leader*: it
takes every write queued so far, runs them in one transaction, commits once, and marks each
done. Threads whose write was in that batch return as soon as the leader releases the lock;
the others lead the next batch. Nobody returns before their write is committed, so "a 200
means stored" holds, and a lone request pays nothing extra (a batch of one).

If a batch fails for a reason other than the database being unreachable (a callback raising,
a duplicate id), each of its writes is retried alone, so one bad write fails only its own
request. Writes must therefore do their work only through the session they are given.

The session a write gets carries its transaction's Connection (:func:`connection_of`): the
hot statements run on it directly (store/fastsql.py), and asking the Session for it each
time costs several µs per call, ~30 µs the first time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tutela.errors import StoreUnavailable

Work = Callable[[Session], None]
MAX_BATCH = 128
CONNECTION_KEY = "tutela.connection"
"""``Session.info`` key under which the transaction's Connection is handed to writes."""


def connection_of(session: Session) -> Connection:
    """The Connection of ``session``'s transaction.

    A write's session (:meth:`tutela.store.database.Store.transaction`) is bound to a
    Connection already in its transaction and carries it in ``info``, since
    ``Session.connection()`` goes through the Session's transaction machinery each time
    (~4 µs, ~30 µs for the first call of a transaction). Any other session is asked.
    """
    conn = session.info.get(CONNECTION_KEY)
    return conn if conn is not None else session.connection()


@dataclass(slots=True)
class _Pending:
    work: Work
    done: bool = False
    error: BaseException | None = field(default=None)


class GroupCommitter:
    """Runs :data:`Work` items in shared transactions; :meth:`submit` returns once committed."""

    def __init__(self, transaction: Callable[[], object], max_batch: int = MAX_BATCH) -> None:
        # ``transaction`` is Store.transaction: a context manager yielding a Session.
        self._transaction = transaction
        self._max_batch = max_batch
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._commit_lock = threading.Lock()

    def submit(self, work: Work) -> None:
        """Run ``work(session)`` in a committed transaction; re-raise its error, if any."""
        item = _Pending(work)
        with self._queue_lock:
            self._queue.append(item)
        while not item.done:
            with self._commit_lock:
                if item.done:  # a leader committed it while this thread waited
                    break
                with self._queue_lock:
                    batch = self._queue[: self._max_batch]
                    del self._queue[: self._max_batch]
                self._run(batch)
        if item.error is not None:
            raise item.error

    def _run(self, batch: list[_Pending]) -> None:
        try:
            self._attempt(batch)
        finally:  # whatever escaped (even KeyboardInterrupt), no waiter may spin forever
            self._finish([i for i in batch if not i.done], StoreUnavailable("write abandoned"))

    def _attempt(self, batch: list[_Pending]) -> None:
        try:
            with self._transaction() as session:  # type: ignore[attr-defined]
                for item in batch:
                    item.work(session)
        except StoreUnavailable as exc:  # the database is gone: every write fails alike
            self._finish(batch, exc)
        except Exception as exc:
            if len(batch) == 1:
                self._finish(batch, exc)
            else:
                for item in batch:  # isolate the failing write: each alone
                    self._attempt([item])
        else:
            self._finish(batch, None)

    @staticmethod
    def _finish(batch: list[_Pending], error: BaseException | None) -> None:
        for item in batch:
            item.error = error
            item.done = True
