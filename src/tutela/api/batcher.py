"""Prompt checks of concurrent requests, run in batches by one thread per worker.

A check is CPU work with a durable write at the end, and a worker runs its Python on one
core at a time. Run in a thread per request, the checks reach the database one by one: each
pays its own begin and commit, and every database call hands the interpreter lock from
thread to thread. Here the event loop queues each request's check and a checking thread
takes *everything queued* at once and runs it as one :meth:`Guard.check_prompts` batch: the
checks run one after another, as they would anyway, but in one transaction with one commit
(:meth:`tutela.store.database.Store.batch`). Under load the batches grow by themselves
(whatever arrived while the previous batch ran); a lone request is a batch of one and waits
for nobody. No request is answered before its batch has committed.

Under load a batch gathers company before it starts, so that its fixed cost (its begin and
commit; on PostgreSQL two or three round trips: ~380 µs of CPU in-process against ~180 µs
per check, docs/service.md) is shared by more checks. When the previous batch held more than
one check, the thread first gives up the core up to ``check_yields`` times while fewer than
:data:`YIELD_UNTIL` checks are queued (``os.sched_yield``: the event loops, the other
workers and the clients run first and queue more, and the core never idles for it; default
16 on PostgreSQL, 0 on SQLite), then, if fewer than :data:`LINGER_BELOW` are queued, sleeps
``check_linger_ms`` (default 2 ms on SQLite, 0 on PostgreSQL; ``Settings.
effective_check_yields`` / ``effective_check_linger_ms``). A lone request at light load
finds the previous batch alone too and never waits.

One thread per worker by default (setting ``check_threads``). On PostgreSQL a check waits
for the database's round trips, but the worker's event loop and the other workers use the
core meanwhile; more threads only split the queue into smaller batches (2 workers on
PostgreSQL, one core: ~1,300 µs of worker CPU per check with 1 thread, ~1,590 with 4).
Scale with ``--workers``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import time
from dataclasses import dataclass

from tutela.api import metrics
from tutela.decision import Decision
from tutela.guard import Guard, PromptCheck

MAX_BATCH = 64
"""Checks per transaction at most: bounds how long one batch holds the database's write
lock (SQLite) and how much one failed batch has to redo alone."""
LINGER_BELOW = 4
"""A batch lingers (see the module's docstring) only while fewer checks than this wait."""
YIELD_UNTIL = 8
"""A loaded batch gives up the core (see the module's docstring) until this many wait."""


@dataclass(slots=True)
class _Waiting:
    check: PromptCheck
    future: asyncio.Future[Decision]
    loop: asyncio.AbstractEventLoop


class PromptBatcher:
    """``await batcher.check(PromptCheck(...))`` returns the stored decision (or raises what
    :meth:`Guard.check_prompt` would raise). Threads start on first use and again after
    :meth:`close` (an app may be served, stopped and served again, as test clients do).

    The hand-over is a :class:`queue.SimpleQueue` (C, one call each way) rather than a
    ``threading.Condition``, whose Python-level ``notify`` cost several µs per request.
    """

    def __init__(self, guard: Guard, threads: int = 1, max_batch: int = MAX_BATCH,
                 linger: float = 0.0, yields: int = 0) -> None:  # fmt: skip
        self.guard = guard
        self.threads = threads
        self.max_batch = max_batch
        self.linger = linger  # seconds; 0: never wait for company
        self.yields = yields  # times the core is given up for company at most; 0: never
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()  # None: stop
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()  # starting and stopping the threads

    async def check(self, check: PromptCheck) -> Decision:
        loop = asyncio.get_running_loop()
        waiting = _Waiting(check, loop.create_future(), loop)
        if not self._workers:
            self._start()
        self._queue.put(waiting)
        return await waiting.future

    def close(self) -> None:
        """Finish what is queued (its decisions commit and are answered), stop the threads."""
        with self._lock:
            workers, self._workers = self._workers, []
            for _ in workers:
                self._queue.put(None)  # after everything queued so far
            for worker in workers:
                worker.join()

    def _start(self) -> None:
        with self._lock:
            if self._workers:
                return
            for n in range(self.threads):
                worker = threading.Thread(target=self._run, name=f"tutela-check-{n}",
                                          daemon=True)  # fmt: skip
                worker.start()
                self._workers.append(worker)

    def _run(self) -> None:
        stop = False
        busy = False  # the previous batch held more than one check: the worker is loaded
        while not stop:
            first = self._queue.get()  # blocks until a check (or the stop) arrives
            if first is None:
                return
            if busy:
                self._gather()
            batch = [first]
            while len(batch) < self.max_batch:  # and whatever else is queued by now
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:  # this thread's stop: finish the batch first
                    stop = True
                    break
                batch.append(item)
            busy = len(batch) > 1
            metrics.CHECK_BATCHES.observe(len(batch))  # ~3 µs a batch, not a request
            self._decide(batch)

    def _gather(self) -> None:
        """Under load, before taking the queue: give up the core while few checks wait, then
        linger if still fewer than :data:`LINGER_BELOW` do (the module's docstring)."""
        for _ in range(self.yields):
            if self._queue.qsize() >= YIELD_UNTIL:
                break
            os.sched_yield()  # the event loops (and the other processes on the core) go first
        if self.linger and self._queue.qsize() < LINGER_BELOW:
            time.sleep(self.linger)  # the event loop takes in more checks meanwhile

    def _decide(self, batch: list[_Waiting]) -> None:
        try:
            results: list[Decision | BaseException] = list(
                self.guard.check_prompts([w.check for w in batch])
            )
        except BaseException as exc:  # nothing may be left waiting forever
            results = [exc] * len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Waiting, object]]] = {}
        for waiting, result in zip(batch, results, strict=True):
            by_loop.setdefault(waiting.loop, []).append((waiting, result))
        for loop, answered in by_loop.items():
            # one wake-up of the loop per batch, not one per request; a closed loop
            # (RuntimeError) has nobody waiting any more
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_answer, answered)


def _answer(answered: list[tuple[_Waiting, object]]) -> None:
    for waiting, result in answered:
        if waiting.future.done():  # the client went away (cancelled)
            continue
        if isinstance(result, BaseException):
            waiting.future.set_exception(result)
        else:
            waiting.future.set_result(result)  # type: ignore[arg-type]
