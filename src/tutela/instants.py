"""Conversions of instants, remembered: one place for the request path's date-time caches.

A check writes the same instant several times (the decision's JSON shape, its audit leaf,
the account's state, attempt and action rows, the API's answer), and each conversion of an
aware ``datetime`` (``isoformat``, SQLite's text form, a time zone applied) costs µs. The
results are remembered per instant *and* UTC offset: equal instants in different zones are
equal datetimes, but not the same text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

RECENT = 256
"""Instants remembered per conversion: the current ones repeat, older ones do not."""


def by_instant(convert: Callable[[datetime], Any]) -> Callable[[datetime], Any]:
    """``convert``, with its results for recent instants remembered (see the module)."""
    remembered = lru_cache(maxsize=RECENT)(lambda value, _offset: convert(value))

    def run(value: datetime) -> Any:
        return remembered(value, value.utcoffset())

    return run


def by_text(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert`` of a driver's value, remembered when the value is text (SQLite's form of
    a date-time); any other value is converted each time, since keying a driver's own
    ``datetime`` by equality would mix zones."""
    remembered = lru_cache(maxsize=RECENT)(convert)

    def run(value: Any) -> Any:
        return remembered(value) if type(value) is str else convert(value)

    return run


isoformat: Callable[[datetime], str] = by_instant(datetime.isoformat)
"""``value.isoformat()``, remembered for recent instants."""
