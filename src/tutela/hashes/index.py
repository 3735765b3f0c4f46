"""Exact range search over PDQ hashes: the interface, a linear scan and a FAISS index.

:class:`LinearScanIndex` is the obviously-correct reference, the oracle in tests (every
query of a fast index must return exactly what the scan returns). :class:`MultiHashIndex`
wraps FAISS's multi-index hashing; the matcher uses the leaner, faster NumPy variant of
the same scheme in :mod:`tutela.hashes.segments` (``benchmarks/bank_bench.py`` compares
all of them with ThreatExchange's index).

How :class:`MultiHashIndex` stays exact. It wraps FAISS's ``IndexBinaryMultiHash``
(multi-index hashing, Norouzi et al.): the 256 bits are cut into ``nhash`` = 16 chunks of
16 bits, each chunk keyed into its own hash table. If two hashes are within distance ``r``,
then by the pigeonhole principle at least one of the 16 chunks differs in at most
``r // 16`` bits; probing every chunk value within that many flips (``nflip``) therefore finds
every true neighbour, and candidates are verified against the full 256 bits. At the PDQ
threshold 31 that is ``nflip = 1``: 17 probes per chunk. This is the same structure
ThreatExchange's ``PDQMultiHashIndex`` uses, so recall is 1.0 by construction, which the
tests check against the scan.

Incremental changes. Adds go straight into the FAISS hash tables (no rebuild). FAISS cannot
remove from a multi-hash index, so deletes are tombstones: the slot is marked dead and
filtered from results at once; when dead slots outnumber live ones the index compacts
itself (an amortised O(1) cost per delete, never a rebuild per change).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from tutela.hashes.signal import HASH_BITS, HASH_BYTES

MAX_RADIUS = 63
"""Largest distance a bank may ask for. Beyond ~63 PDQ matches are mostly unrelated images."""


@dataclass(frozen=True, slots=True, order=True)
class IndexHit:
    """One stored hash within the radius of query number ``query``."""

    query: int
    id: int
    distance: int


class HashIndex(ABC):
    """Exact range search over 256-bit hashes keyed by integer ids (entry ids)."""

    @abstractmethod
    def add(self, ids: Sequence[int] | np.ndarray, codes: np.ndarray) -> None:
        """Add hashes (``(n, 32)`` uint8) under ``ids``. An id already present is an error."""

    @abstractmethod
    def remove(self, ids: Iterable[int]) -> int:
        """Remove ``ids`` (unknown ids are ignored); returns how many were removed."""

    @abstractmethod
    def search(self, queries: np.ndarray, radius: int) -> list[IndexHit]:
        """Every stored hash within Hamming distance ``<= radius`` of each query."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of live hashes."""

    @abstractmethod
    def present(self, ids: np.ndarray) -> np.ndarray:
        """For each of ``ids``, whether it is live in the index (vectorised membership)."""

    def __contains__(self, entry_id: object) -> bool:
        if not isinstance(entry_id, int):
            return False
        return bool(self.present(np.array([entry_id], dtype=np.int64))[0])


def check_codes(
    ids: Sequence[int] | np.ndarray, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    codes = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1, HASH_BYTES)
    id_arr = np.asarray(ids, dtype=np.int64).reshape(-1)
    if len(id_arr) != len(codes):
        raise ValueError(f"{len(id_arr)} ids for {len(codes)} hashes")
    if len(np.unique(id_arr)) != len(id_arr):
        raise ValueError("duplicate ids in one add")
    return id_arr, codes


def check_radius(radius: int) -> int:
    if not 0 <= radius <= MAX_RADIUS:
        raise ValueError(f"radius must be within 0..{MAX_RADIUS}, not {radius}")
    return int(radius)


def popcount_distances(codes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Hamming distances from one packed ``query`` to every row of ``codes``."""
    words = codes.view(np.uint64)
    q = np.ascontiguousarray(query, dtype=np.uint8).view(np.uint64)
    return np.bitwise_count(words ^ q).sum(axis=1, dtype=np.int64)


class _Slots:
    """Growable parallel arrays: slot -> (id, alive). Capacity doubles, so appends are O(1)."""

    def __init__(self) -> None:
        self.ids = np.empty(0, dtype=np.int64)
        self.alive = np.empty(0, dtype=bool)
        self.size = 0
        self.dead = 0
        self.sorted = True  # ids appended in increasing order: lookups can bisect

    def append(self, ids: np.ndarray) -> None:
        need = self.size + len(ids)
        if need > len(self.ids):
            cap = max(need, 2 * len(self.ids), 1024)
            self.ids = np.resize(self.ids, cap)
            self.alive = np.resize(self.alive, cap)
        if len(ids):
            if self.sorted and (
                np.any(np.diff(ids) <= 0) or (self.size and ids[0] <= self.ids[self.size - 1])
            ):
                self.sorted = False
            self.ids[self.size : need] = ids
            self.alive[self.size : need] = True
        self.size = need

    def live_slots_of(self, ids: np.ndarray) -> np.ndarray:
        """Slots holding a live copy of any of ``ids``."""
        used = self.ids[: self.size]
        if self.sorted:
            pos = np.searchsorted(used, ids)
            inside = pos < self.size
            pos = pos[inside]
            slots = pos[used[pos] == ids[inside]]
        else:
            slots = np.flatnonzero(np.isin(used, ids))
        return slots[self.alive[slots]]


class LinearScanIndex(HashIndex):
    """The reference: compare the query with every stored hash. Simple, exact, O(n) a query."""

    def __init__(self) -> None:
        self._codes = np.empty((0, HASH_BYTES), dtype=np.uint8)
        self._ids = np.empty(0, dtype=np.int64)

    def add(self, ids: Sequence[int] | np.ndarray, codes: np.ndarray) -> None:
        id_arr, codes = check_codes(ids, codes)
        if np.isin(id_arr, self._ids).any():
            raise ValueError("id already in the index")
        self._codes = np.concatenate([self._codes, codes])
        self._ids = np.concatenate([self._ids, id_arr])

    def remove(self, ids: Iterable[int]) -> int:
        gone = np.isin(self._ids, np.fromiter(ids, dtype=np.int64))
        self._codes = self._codes[~gone]
        self._ids = self._ids[~gone]
        return int(gone.sum())

    def search(self, queries: np.ndarray, radius: int) -> list[IndexHit]:
        radius = check_radius(radius)
        hits: list[IndexHit] = []
        for qi, query in enumerate(np.asarray(queries, dtype=np.uint8).reshape(-1, HASH_BYTES)):
            dist = popcount_distances(self._codes, query)
            for slot in np.flatnonzero(dist <= radius):
                hits.append(IndexHit(qi, int(self._ids[slot]), int(dist[slot])))
        return sorted(hits)

    def __len__(self) -> int:
        return len(self._ids)

    def present(self, ids: np.ndarray) -> np.ndarray:
        return np.isin(np.asarray(ids, dtype=np.int64), self._ids)


class MultiHashIndex(HashIndex):
    """Exact, sub-linear range search: FAISS multi-index hashing plus tombstones (see module)."""

    NHASH = 16
    """Chunks (hash tables). 16 x 16 bits keeps ``nflip`` at 1 for radius 31."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._new_faiss()
        self._slots = _Slots()

    def _new_faiss(self) -> None:
        self._faiss = faiss.IndexBinaryMultiHash(HASH_BITS, self.NHASH, HASH_BITS // self.NHASH)

    def add(self, ids: Sequence[int] | np.ndarray, codes: np.ndarray) -> None:
        id_arr, codes = check_codes(ids, codes)
        if not len(id_arr):
            return
        with self._lock:
            if len(self._slots.live_slots_of(id_arr)):
                raise ValueError("id already in the index")
            self._faiss.add(codes)  # FAISS slot numbers are sequential, matching _Slots
            self._slots.append(id_arr)

    def remove(self, ids: Iterable[int]) -> int:
        id_arr = np.unique(np.fromiter(ids, dtype=np.int64))
        with self._lock:
            slots = self._slots.live_slots_of(id_arr)
            self._slots.alive[slots] = False
            self._slots.dead += len(slots)
            if self._slots.dead > max(1024, self._slots.size - self._slots.dead):
                self._compact()
            return len(slots)

    def _compact(self) -> None:
        """Rebuild from the live slots only: amortised over at least as many deletes."""
        used = self._slots.size
        keep = np.flatnonzero(self._slots.alive[:used])
        codes = faiss.vector_to_array(self._faiss.storage.xb).reshape(-1, HASH_BYTES)[:used]
        live_codes = codes[keep].copy()
        live_ids = self._slots.ids[keep].copy()
        self._new_faiss()
        self._slots = _Slots()
        if len(live_ids):
            order = np.argsort(live_ids, kind="stable")
            self._faiss.add(live_codes[order])
            self._slots.append(live_ids[order])

    def search(self, queries: np.ndarray, radius: int) -> list[IndexHit]:
        radius = check_radius(radius)
        q = np.ascontiguousarray(queries, dtype=np.uint8).reshape(-1, HASH_BYTES)
        with self._lock:
            if self._slots.size == 0 or len(q) == 0:
                return []
            self._faiss.nflip = radius // self.NHASH
            # FAISS range search keeps distances strictly below its radius argument.
            limits, distances, slots = self._faiss.range_search(q, radius + 1)
            alive = self._slots.alive[slots]
            ids = self._slots.ids[slots]
        query_of = np.repeat(np.arange(len(q)), np.diff(limits.astype(np.int64)))
        return sorted(
            IndexHit(int(qi), int(i), int(d))
            for qi, i, d in zip(query_of[alive], ids[alive], distances[alive], strict=True)
        )

    def __len__(self) -> int:
        return self._slots.size - self._slots.dead

    def present(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        with self._lock:
            used = self._slots.ids[: self._slots.size]
            alive = self._slots.alive[: self._slots.size]
            return np.isin(ids, used[alive])

    def memory_bytes(self) -> int:
        """Approximate resident size: codes, the 16 hash tables' id lists, the slot arrays."""
        n = self._slots.size
        return (
            n * HASH_BYTES + self.NHASH * n * 8 + self._slots.ids.nbytes + self._slots.alive.nbytes
        )
