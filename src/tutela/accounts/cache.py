"""Account rows a worker read, kept from one batch of checks to the next and confirmed there.

Why: on PostgreSQL a batch of prompt checks read its accounts' rows in a round trip of its
own before deciding anything (``AccountRepository.prefetch``), one of three per batch. The
same accounts come back batch after batch (a platform's active users; every account of a
load test), and their rows rarely change: only a block, an operator or an age verification
writes one, and every such write moves the row's ``version`` on.

So a worker remembers the rows it read, and a batch whose accounts are all remembered
decides on those rows without reading them first. It does not trust them blindly: the
batch's first round trip that goes out anyway (the audit log's append lock, or a block's
state write) carries a read of the rows' versions, and the batch goes on only if every
version is the one remembered (``AccountRepository._confirm``). Otherwise the rows that
moved are forgotten and the batch fails with ``StaleAccountState`` before anything is
committed or answered; ``Guard.check_prompts`` then runs it again, reading afresh. The
versions are read in the batch's own transaction, after every decision was settled and
before its COMMIT: a change another worker committed before that read is always seen, as it
was when the batch read the rows first; one committed after it races the batch exactly as
it raced a batch that had just read them. A row the batch itself writes is forgotten first
(its write checks the version it replaces anyway), so the next batch reads what was
written.

Bounded (setting ``account_cache_size``, 0 to read every batch's accounts afresh): past
its size the rows read longest ago go first. Shared by a worker's checking threads; each
operation is one dictionary call or is taken under a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from itertools import islice

Row = tuple[object, ...]
_MISSING = object()


class AccountRowCache:
    """Account id -> its row as last read (None: the account had no row), at most ``size``.

    ``known(ids)`` the remembered rows of ``ids``; ``remember(rows)`` what a batch read;
    ``forget(ids)`` what was written or found changed.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._rows: dict[str, Row | None] = {}
        self._lock = threading.Lock()  # remember's eviction walks the dictionary

    def __len__(self) -> int:
        return len(self._rows)

    def known(self, ids: Iterable[str]) -> dict[str, Row | None]:
        """The remembered rows among ``ids`` (absent: not remembered)."""
        rows = self._rows
        out: dict[str, Row | None] = {}
        for account_id in ids:
            row = rows.get(account_id, _MISSING)
            if row is not _MISSING:
                out[account_id] = row  # type: ignore[assignment]
        return out

    def remember(self, rows: Mapping[str, Row | None]) -> None:
        """Keep ``rows`` as read just now; the oldest reads go past the size."""
        if not self.size:
            return
        with self._lock:
            kept = self._rows
            for account_id, row in rows.items():
                kept.pop(account_id, None)  # to the end: read most recently
                kept[account_id] = row
            excess = len(kept) - self.size
            if excess > 0:
                for account_id in list(islice(kept, excess)):  # the oldest, in order
                    del kept[account_id]

    def forget(self, ids: Iterable[str]) -> None:
        """Drop ``ids`` (written, or found changed): their next batch reads them afresh."""
        rows = self._rows
        for account_id in ids:
            rows.pop(account_id, None)
