"""Structured JSON logs (structlog): one line per event, request id on every request line.

Prompt text never reaches the log unless ``log_prompts`` is set: logs travel further and
live longer than the decision store, so they get less.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

import structlog
from pydantic_core import PydanticSerializationError, to_json
from structlog.typing import EventDict, WrappedLogger

_configured = False


class _StderrLogger:
    """Writes each rendered line to the *current* ``sys.stderr`` (one write per line).

    Looking ``sys.stderr`` up per call, instead of binding it once, keeps logs flowing when
    the stream is swapped (uvicorn reloads, pytest's capture).
    """

    def msg(self, message: str) -> None:
        sys.stderr.write(message + "\n")

    debug = info = warning = warn = error = critical = exception = fatal = msg


def _logger_factory(*_args: object) -> _StderrLogger:
    return _StderrLogger()


class _UtcStamper:
    """Adds ``timestamp`` (ISO 8601, UTC, microseconds, ``Z``), as structlog's
    ``TimeStamper(fmt="iso", utc=True)`` writes it, at a fraction of its cost.

    The access log stamps every request; building a timezone-aware ``datetime`` and
    formatting it each time was a third of the line's cost. The date and time up to the
    second are formatted once per second and reused. Unlike ``datetime.isoformat()`` the
    fraction is always written, also when it is ``.000000``.
    """

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
        now = time.time()
        second = int(now)
        if second != self._second:  # a benign race: both threads write the same value
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        event_dict["timestamp"] = f"{self._prefix}.{int((now - second) * 1e6):06d}Z"
        return event_dict


def _fallback(obj: Any) -> Any:
    """What JSON cannot encode: ``__structlog__()`` where defined, else ``repr``
    (as structlog's ``JSONRenderer`` does)."""
    try:
        return obj.__structlog__()
    except AttributeError:
        return repr(obj)


_encode = json.JSONEncoder(default=_fallback).encode
"""The standard library's encoder, for what pydantic-core refuses (see :func:`_render`)."""


def _render(logger: WrappedLogger, name: str, event_dict: EventDict) -> str:
    """The final processor: the event as one JSON object, ASCII only (``\\u`` escapes).

    ``json``'s encoder was half of the access line's cost on every request; pydantic-core's
    (Rust) writes the line for under half of that (tests/test_api_encoding.py holds the two
    to the same data). Its output is compact (``{"a":1}``, not ``{"a": 1}``) and it writes
    dates, paths and dataclasses as JSON values rather than their ``repr``; a line it
    cannot encode (a lone surrogate in some value) is written by ``json`` as before, so
    every event still makes its line.
    """
    try:
        return to_json(event_dict, ensure_ascii=True, fallback=_fallback).decode()
    except PydanticSerializationError:
        return _encode(event_dict)


class _StderrHandler(logging.Handler):
    """A standard-library handler writing each formatted record to the *current*
    ``sys.stderr``, as :class:`_StderrLogger` does for structlog's own events."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


BRIDGED = ("uvicorn", "tutela")
"""Standard-library loggers whose records join the JSON stream: uvicorn's server and
supervisor (a worker that died and was restarted, a request it could not parse) and
Tutela's own modules that log through ``logging`` (the store, the evidence keys). Without
this, their INFO lines were dropped and their warnings printed as bare text."""


def configure(level: str = "INFO") -> None:
    """Set up JSON logging on stderr once per process (later calls only change the level).

    Besides structlog's events, the records of the :data:`BRIDGED` standard-library loggers
    are rendered the same way (structlog's ``ProcessorFormatter``), with a ``logger`` key
    naming where they came from.
    """
    global _configured
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    stamper = _UtcStamper()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamper,
            structlog.processors.format_exc_info,
            _render,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_logger_factory,
        cache_logger_on_first_use=False,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
                stamper,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _render,
            ],
        )
    )
    for name in BRIDGED:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
            logger.removeHandler(old)  # configured again: one handler, the new level
        logger.addHandler(handler)  # and still propagating: a host app's handlers see them too
        logger.setLevel(numeric)
    _configured = True


def get_logger(name: str = "tutela.api") -> structlog.typing.FilteringBoundLogger:
    if not _configured:
        configure()
    return structlog.get_logger(name)
