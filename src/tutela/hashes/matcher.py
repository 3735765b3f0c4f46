"""Matching an image's 8 dihedral PDQ hashes against every enabled bank, as signals.

One in-memory :class:`~tutela.hashes.segments.SegmentedIndex` holds every *enabled entry* of
every bank; bank settings (on/off, threshold, kind) are applied after the search, so
switching a bank off or changing its threshold never touches the index. The index follows
the database incrementally (:meth:`BankMatcher.refresh`): new and re-enabled entries are
added, disabled ones removed, so workers and the CLI can change banks while others match.

Why false-positive banks suppress: a bank of known innocent images that happen to collide
with entries of block lists (reviewers' overturns feed it) is the only safe way to stop a
recurring false block without editing a partner's list. Suppression applies to ``block``
matches only: registry matches say where an image came from and stay true either way.

The matcher never decides: it returns matches and :class:`~tutela.decision.Signal` s
(``hash_match``; ``hash_match_suppressed``; ``hash_quality_low``) for the policy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from tutela.decision import Signal
from tutela.hashes.index import HashIndex
from tutela.hashes.models import Bank, BankKind
from tutela.hashes.repository import BankRepository
from tutela.hashes.segments import SegmentedIndex
from tutela.hashes.signal import normalise_pdq, to_codes
from tutela.image.pdq import DIHEDRAL_NAMES, QUALITY_THRESHOLD, PdqResult

DETECTOR = "hash_banks"
_CLOCK_OVERLAP = timedelta(seconds=5)  # re-read recent changes: commits land out of order


@dataclass(frozen=True, slots=True)
class BankMatch:
    """One bank entry within its bank's threshold of one of the image's hashes."""

    bank: str
    bank_id: int
    kind: BankKind
    threshold: int
    entry_id: int
    distance: int
    transform: str
    """Which dihedral variant of the image matched (``original``, ``rotate90`` ...)."""
    ref: str | None
    metadata: dict[str, Any]

    def evidence(self) -> dict[str, Any]:
        return {
            "bank": self.bank,
            "bank_kind": str(self.kind),
            "distance": self.distance,
            "threshold": self.threshold,
            "entry_id": self.entry_id,
            "transform": self.transform,
            "ref": self.ref,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.evidence(), "metadata": self.metadata}


@dataclass(slots=True)
class MatchResult:
    """All matches of one image; ``suppressed`` holds block matches a false-positive bank
    cancelled. ``matched`` is False when the hash quality was too low to match at all."""

    quality: int | None
    matched: bool
    matches: list[BankMatch] = field(default_factory=list)
    suppressed: list[BankMatch] = field(default_factory=list)

    def of_kind(self, kind: BankKind) -> list[BankMatch]:
        return [m for m in self.matches if m.kind is kind]

    @property
    def blocked(self) -> bool:
        """True when a ``block`` bank matched and no false-positive bank suppressed it."""
        return bool(self.of_kind(BankKind.BLOCK))

    def signals(self) -> list[Signal]:
        """Findings for the policy. A ``block`` match is the one that must lead to block."""
        out: list[Signal] = []
        if not self.matched:
            out.append(
                Signal(
                    DETECTOR,
                    "hash_quality_low",
                    0.0,
                    {
                        "quality": self.quality,
                        "quality_threshold": QUALITY_THRESHOLD,
                        "note": "PDQ quality too low to match against hash banks",
                    },
                )
            )
            return out
        for m in self.matches:
            if m.kind is BankKind.FALSE_POSITIVE:
                continue
            out.append(Signal(DETECTOR, "hash_match", _score(m), m.evidence()))
        if self.suppressed:
            by = [m.evidence() for m in self.of_kind(BankKind.FALSE_POSITIVE)]
            out.append(
                Signal(
                    DETECTOR,
                    "hash_match_suppressed",
                    0.0,
                    {"suppressed": [m.evidence() for m in self.suppressed], "by": by},
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "quality": self.quality,
            "matched": self.matched,
            "matches": [m.to_dict() for m in self.matches],
            "suppressed": [m.to_dict() for m in self.suppressed],
        }


def _score(m: BankMatch) -> float:
    """1.0 for an identical hash, falling linearly to 0.5 at the bank's threshold."""
    return 1.0 - 0.5 * (m.distance / max(m.threshold, 1))


class BankMatcher:
    """Matches images against the banks in a :class:`BankRepository`. Thread-safe."""

    def __init__(
        self,
        repo: BankRepository,
        *,
        index_factory: Callable[[], HashIndex] = SegmentedIndex,
        refresh_seconds: float = 2.0,
    ) -> None:
        self.repo = repo
        self._index_factory = index_factory
        self._refresh_seconds = refresh_seconds
        self._lock = threading.RLock()
        self._index: HashIndex | None = None
        self._banks: dict[int, Bank] = {}
        self._since: datetime | None = None
        self._checked_at = 0.0

    # --- keeping up with the database -----------------------------------------------------
    def load(self) -> None:
        """(Re)build the index from every enabled entry. Called lazily on first use."""
        with self._lock:
            since = self.repo.latest_change()
            index = self._index_factory()
            ids: list[np.ndarray] = []
            codes: list[np.ndarray] = []
            for batch in self.repo.enabled_entries():
                ids.append(np.fromiter((i for i, _ in batch), dtype=np.int64, count=len(batch)))
                codes.append(to_codes(s for _, s in batch))
            if ids:  # one add: the index sorts everything once instead of merging batches
                index.add(np.concatenate(ids), np.concatenate(codes))
            self._index = index
            self._since = since
            self._banks = {b.id: b for b in self.repo.list_banks(counts=False)}
            self._checked_at = time.monotonic()

    def refresh(self) -> int:
        """Apply entry changes made since the last load/refresh; returns how many applied."""
        with self._lock:
            if self._index is None:
                self.load()
                return 0
            self._banks = {b.id: b for b in self.repo.list_banks(counts=False)}
            self._checked_at = time.monotonic()
            if self._since is None:
                changes = self.repo.changed_since(datetime.min)
            else:
                changes = self.repo.changed_since(self._since - _CLOCK_OVERLAP)
            applied = 0
            if changes:
                ids = np.fromiter((ch.id for ch in changes), dtype=np.int64, count=len(changes))
                enabled = np.fromiter(
                    (ch.enabled for ch in changes), dtype=bool, count=len(changes)
                )
                present = self._index.present(ids)
                to_add = np.flatnonzero(enabled & ~present)
                to_remove = ids[~enabled & present]
                if len(to_add):
                    self._index.add(ids[to_add], to_codes(changes[i].signal for i in to_add))
                    applied += len(to_add)
                if len(to_remove):
                    applied += self._index.remove(to_remove.tolist())
            if changes:
                latest = max(ch.updated_at for ch in changes)
                self._since = latest if self._since is None else max(self._since, latest)
            return applied

    def _ensure_current(self) -> HashIndex:
        if self._index is None:
            self.load()
        elif time.monotonic() - self._checked_at >= self._refresh_seconds:
            self.refresh()
        assert self._index is not None
        return self._index

    @property
    def size(self) -> int:
        """Enabled entries in the index."""
        with self._lock:
            return len(self._ensure_current())

    # --- matching -------------------------------------------------------------------------
    def match(
        self,
        image_hashes: PdqResult | Sequence[str],
        *,
        kinds: Collection[BankKind] | None = None,
        banks: Collection[str] | None = None,
    ) -> MatchResult:
        """Match an image's hashes (a :class:`PdqResult`, or hex strings in dihedral order).

        A :class:`PdqResult` under quality 50 is reported and not matched. ``kinds`` and
        ``banks`` restrict the banks consulted (the provenance registry asks only its own).
        """
        if isinstance(image_hashes, PdqResult):
            quality: int | None = image_hashes.quality
            if not image_hashes.matchable:
                return MatchResult(quality=quality, matched=False)
            hashes = list(image_hashes.hashes)
        else:
            quality = None
            hashes = [normalise_pdq(h) for h in image_hashes]
        with self._lock:
            index = self._ensure_current()
            banks_now = {
                bid: b
                for bid, b in self._banks.items()
                if b.enabled
                and (kinds is None or b.kind in kinds)
                and (banks is None or b.name in banks)
            }
            if not banks_now or not hashes:
                return MatchResult(quality=quality, matched=True)
            radius = max(b.threshold for b in banks_now.values())
            hits = index.search(to_codes(hashes), radius)
        best: dict[int, tuple[int, int]] = {}  # entry id -> (distance, query number)
        for h in hits:
            if h.id not in best or h.distance < best[h.id][0]:
                best[h.id] = (h.distance, h.query)
        entries = self.repo.entries_by_id(sorted(best)) if best else {}
        matches: list[BankMatch] = []
        for entry_id, (distance, query) in sorted(best.items()):
            entry = entries.get(entry_id)
            bank = banks_now.get(entry.bank_id) if entry else None
            if entry is None or bank is None or not entry.enabled or distance > bank.threshold:
                continue
            transform = DIHEDRAL_NAMES[query] if query < len(DIHEDRAL_NAMES) else f"#{query}"
            matches.append(
                BankMatch(
                    bank.name,
                    bank.id,
                    bank.kind,
                    bank.threshold,
                    entry_id,
                    distance,
                    transform,
                    entry.ref,
                    entry.metadata,
                )
            )
        matches.sort(key=lambda m: (m.distance, m.bank, m.entry_id))
        result = MatchResult(quality=quality, matched=True, matches=matches)
        if result.of_kind(BankKind.FALSE_POSITIVE):
            result.suppressed = result.of_kind(BankKind.BLOCK)
            result.matches = [m for m in matches if m.kind is not BankKind.BLOCK]
        return result
