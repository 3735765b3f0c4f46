"""The matcher's index: multi-index hashing over sorted segments, in NumPy. Exact.

Why not only FAISS's multi-hash index (:class:`tutela.hashes.index.MultiHashIndex`): it keeps
one hash table of id lists per chunk (about 370 bytes a hash) and looks candidates up one
by one; at 10M hashes a query of 8 dihedral hashes costs it a hundred-odd milliseconds.
The same pigeonhole scheme over *sorted* arrays needs about 100 bytes a hash and answers all
probes of all 8 hashes with a handful of vectorised NumPy operations, several times faster
(``benchmarks/bank_bench.py`` measures both against ThreatExchange's index).

Exactness. The 256 bits are 16 chunks of 16 bits. Two hashes within distance ``r`` agree,
in at least one chunk, up to ``r // 16`` flipped bits (pigeonhole). A segment keeps, for each
chunk, its rows ordered by that chunk's value and the start offset of every one of the 65,536
values, so "every row whose chunk ``c`` is one of these 17 values" is 17 slices. All such
candidates are verified on the full 256 bits, so recall is 1.0 by construction; the tests
compare every query with the linear scan.

Incremental changes without rebuilding the index (the logarithmic method of Bentley & Saxe):
new hashes go to a small unsorted buffer (linear-scanned; at most :data:`BUFFER_ROWS`).
A full buffer becomes a sorted segment; whenever the newest segment is at least half the
size of the one before, the two are merged. So a hash is re-sorted O(log n) times over its
life, segments number O(log n), and no add ever re-sorts the whole index except at the
moment it doubles (like a growing array). Removals are tombstones filtered at once; a segment
more than half dead is rewritten from its live rows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from itertools import combinations

import numpy as np

from tutela.hashes.index import HashIndex, IndexHit, check_codes, check_radius
from tutela.hashes.signal import HASH_BYTES

CHUNKS = 16
BUFFER_ROWS = 16_384
"""Newest hashes kept unsorted: small enough that scanning them costs well under 1 ms."""


def _flip_masks(nflip: int) -> np.ndarray:
    """Every 16-bit mask with at most ``nflip`` bits set (1, 17, 137, 697 ... masks)."""
    masks = [0]
    for k in range(1, nflip + 1):
        masks.extend(sum(1 << b for b in bits) for bits in combinations(range(16), k))
    return np.array(masks, dtype=np.int64)


_MASKS = {n: _flip_masks(n) for n in range(4)}  # radius 0..63 → nflip 0..3


def _chunk_values(codes: np.ndarray) -> np.ndarray:
    """(m, 32) uint8 → (m, 16) chunk values (big-endian byte pairs)."""
    return codes.view(">u2").astype(np.int64)


def _words(codes: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(codes).view(np.uint64).reshape(-1, HASH_BYTES // 8)


class _Segment:
    """An immutable, sorted block of hashes (rows ordered by id) plus a tombstone mask."""

    def __init__(self, ids: np.ndarray, codes: np.ndarray) -> None:
        order = np.argsort(ids, kind="stable")
        self.ids = np.ascontiguousarray(ids[order])
        self.codes = np.ascontiguousarray(codes[order])
        self.words = _words(self.codes)
        self.alive = np.ones(len(ids), dtype=bool)
        self.dead = 0
        m = len(ids)
        # uint16 keys: NumPy's stable sort is then a radix sort, O(m) per chunk.
        values = self.codes.view(">u2").astype(np.uint16)
        self.perm = np.empty((CHUNKS, m), dtype=np.int32)
        self.offsets = np.zeros((CHUNKS, 65_537), dtype=np.int64)
        for c in range(CHUNKS):
            key = values[:, c]
            self.perm[c] = np.argsort(key, kind="stable")
            np.cumsum(np.bincount(key, minlength=65_536), out=self.offsets[c, 1:])
        self._flat_perm = self.perm.reshape(-1)

    def __len__(self) -> int:
        return len(self.ids)

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Live rows holding any of ``ids`` (rows are in id order: bisect)."""
        pos = np.searchsorted(self.ids, ids)
        inside = pos < len(self.ids)
        pos = pos[inside]
        rows = pos[self.ids[pos] == ids[inside]]
        return rows[self.alive[rows]]

    def search(self, queries: np.ndarray, radius: int) -> tuple[np.ndarray, ...]:
        """(query numbers, rows, distances) of live rows within ``radius``."""
        masks = _MASKS[radius // CHUNKS]
        k = len(queries)
        keys = _chunk_values(queries)[:, :, None] ^ masks[None, None, :]  # (k, 16, P)
        chunk = np.arange(CHUNKS)[None, :, None]
        starts = self.offsets[chunk, keys]
        lengths = (self.offsets[chunk, keys + 1] - starts).reshape(-1)
        total = int(lengths.sum())
        if total == 0:
            return _EMPTY
        # Expand every (start, length) slice into flat indices without a Python loop.
        first = (starts + chunk * len(self.ids)).reshape(-1)
        skip = np.cumsum(lengths) - lengths
        flat = np.repeat(first - skip, lengths) + np.arange(total)
        rows = self._flat_perm[flat]
        query_of = np.repeat(np.repeat(np.arange(k), CHUNKS * len(masks)), lengths)
        qwords = _words(queries)
        dist = np.bitwise_count(self.words[rows] ^ qwords[query_of]).sum(axis=1)
        keep = (dist <= radius) & self.alive[rows]
        # A row found through several chunks is reported once per query.
        pairs, first_seen = np.unique(
            query_of[keep] * len(self.ids) + rows[keep], return_index=True
        )
        return pairs // len(self.ids), pairs % len(self.ids), dist[keep][first_seen]

    def live(self) -> tuple[np.ndarray, np.ndarray]:
        return self.ids[self.alive], self.codes[self.alive]


_EMPTY = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64))


class SegmentedIndex(HashIndex):
    """Exact, sub-linear range search with cheap adds and removals (see module). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._segments: list[_Segment] = []
        self._buf_ids = np.empty(0, dtype=np.int64)
        self._buf_codes = np.empty((0, HASH_BYTES), dtype=np.uint8)

    # --- changes -------------------------------------------------------------------------
    def add(self, ids: Sequence[int] | np.ndarray, codes: np.ndarray) -> None:
        id_arr, codes = check_codes(ids, codes)
        if not len(id_arr):
            return
        with self._lock:
            if self._locate(id_arr)[1]:
                raise ValueError("id already in the index")
            if len(id_arr) >= BUFFER_ROWS:  # a bulk load becomes a segment of its own
                self._push(_Segment(id_arr, codes))
                return
            self._buf_ids = np.concatenate([self._buf_ids, id_arr])
            self._buf_codes = np.concatenate([self._buf_codes, codes])
            if len(self._buf_ids) >= BUFFER_ROWS:
                segment = _Segment(self._buf_ids, self._buf_codes)
                self._buf_ids = self._buf_ids[:0]
                self._buf_codes = self._buf_codes[:0]
                self._push(segment)

    def _push(self, segment: _Segment) -> None:
        """Append a segment, merging while the newest is at least half its predecessor."""
        self._segments.append(segment)
        while len(self._segments) >= 2 and 2 * len(self._segments[-1]) >= len(self._segments[-2]):
            newer = self._segments.pop()
            older = self._segments.pop()
            ids_a, codes_a = older.live()
            ids_b, codes_b = newer.live()
            self._segments.append(
                _Segment(np.concatenate([ids_a, ids_b]), np.concatenate([codes_a, codes_b]))
            )

    def remove(self, ids: Iterable[int]) -> int:
        id_arr = np.unique(np.fromiter(ids, dtype=np.int64))
        removed = 0
        with self._lock:
            for i, segment in enumerate(list(self._segments)):
                rows = segment.rows_of(id_arr)
                if len(rows):
                    segment.alive[rows] = False
                    segment.dead += len(rows)
                    removed += len(rows)
                    if segment.dead * 2 > len(segment):
                        live_ids, live_codes = segment.live()
                        self._segments[i] = _Segment(live_ids, live_codes)
            self._segments = [s for s in self._segments if len(s)]
            in_buffer = np.isin(self._buf_ids, id_arr)
            if in_buffer.any():
                removed += int(in_buffer.sum())
                self._buf_ids = self._buf_ids[~in_buffer]
                self._buf_codes = self._buf_codes[~in_buffer]
        return removed

    def _locate(self, ids: np.ndarray) -> tuple[int, int]:
        """(rows found in segments, rows found in the buffer) for ``ids``."""
        in_segments = sum(len(s.rows_of(ids)) for s in self._segments)
        return in_segments, int(np.isin(self._buf_ids, ids).sum()) + in_segments

    # --- queries --------------------------------------------------------------------------
    def search(self, queries: np.ndarray, radius: int) -> list[IndexHit]:
        radius = check_radius(radius)
        q = np.ascontiguousarray(queries, dtype=np.uint8).reshape(-1, HASH_BYTES)
        if not len(q):
            return []
        hits: list[IndexHit] = []
        with self._lock:
            segments = list(self._segments)
            buf_ids, buf_codes = self._buf_ids, self._buf_codes
        for segment in segments:
            qi, rows, dist = segment.search(q, radius)
            hits.extend(
                IndexHit(int(a), int(b), int(c))
                for a, b, c in zip(qi, segment.ids[rows], dist, strict=True)
            )
        if len(buf_ids):
            bwords = _words(buf_codes)
            for qi, qw in enumerate(_words(q)):
                dist = np.bitwise_count(bwords ^ qw).sum(axis=1)
                hits.extend(
                    IndexHit(qi, int(buf_ids[r]), int(dist[r]))
                    for r in np.flatnonzero(dist <= radius)
                )
        return sorted(hits)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(s) - s.dead for s in self._segments) + len(self._buf_ids)

    def present(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        with self._lock:
            found = np.isin(ids, self._buf_ids)
            for segment in self._segments:
                pos = np.searchsorted(segment.ids, ids)
                inside = pos < len(segment)
                hit = np.zeros(len(ids), dtype=bool)
                hit[inside] = (segment.ids[pos[inside]] == ids[inside]) & segment.alive[pos[inside]]
                found |= hit
            return found

    def memory_bytes(self) -> int:
        """Bytes held by the arrays (codes, ids, per-chunk orders and offsets, buffer)."""
        with self._lock:
            total = self._buf_ids.nbytes + self._buf_codes.nbytes
            for s in self._segments:
                total += (
                    s.ids.nbytes
                    + s.codes.nbytes
                    + s.alive.nbytes
                    + s.perm.nbytes
                    + s.offsets.nbytes
                )
            return total

    @property
    def segment_sizes(self) -> list[int]:
        """Sizes of the sorted segments, oldest first (for tests and diagnostics)."""
        with self._lock:
            return [len(s) for s in self._segments]
