"""Blocking work of a hot endpoint, off the event loop, through one thread pool.

FastAPI runs a ``def`` endpoint in anyio's worker threads; every call pays a capacity
limiter, a cancel scope and a condition-variable queue, about 15 µs of CPU more than
``loop.run_in_executor`` on a :class:`~concurrent.futures.ThreadPoolExecutor` (whose queue is
C's ``SimpleQueue``). The prompt check is an ``async def`` endpoint that sends only the check
itself (CPU work and the decision's database write) here; parsing, auth and rendering stay
on the event loop, where they ran anyway.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

MAX_THREADS = 40
"""As many as anyio's default limiter lets ``def`` endpoints use: concurrent checks feed the
store's group commit, so fewer threads would mean smaller batches."""


class Offload:
    """``await offload(fn, *args)`` runs ``fn`` in a worker thread and returns its result.

    The caller's context variables go along (as with ``run_in_threadpool``), so structlog's
    bound context and the like are seen in the thread. The pool starts on first use and
    again after :meth:`close`: an app may be served, stopped and served again (test
    clients do that).
    """

    def __init__(self, max_threads: int = MAX_THREADS) -> None:
        self.max_threads = max_threads
        self._executor: ThreadPoolExecutor | None = None

    async def __call__(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        executor = self._executor
        if executor is None:  # on the event loop's thread: no other caller runs meanwhile
            executor = self._executor = ThreadPoolExecutor(
                self.max_threads, thread_name_prefix="tutela-api"
            )
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(executor, call)

    def close(self) -> None:
        """Let the running calls finish (their decisions commit), then stop the threads."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
