"""Structured JSON logs (structlog): one line per event, request id on every request line.

Prompt text never reaches the log unless ``log_prompts`` is set: logs travel further and
live longer than the decision store, so they get less.
"""

from __future__ import annotations

import logging
import sys

import structlog

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


def configure(level: str = "INFO") -> None:
    """Set up JSON logging on stderr once per process (later calls only change the level)."""
    global _configured
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_logger_factory,
        cache_logger_on_first_use=False,
    )
    _configured = True


def get_logger(name: str = "tutela.api") -> structlog.typing.FilteringBoundLogger:
    if not _configured:
        configure()
    return structlog.get_logger(name)
