"""Fingerprints of prompts: MinHash over character shingles of the normalised text.

Why MinHash over character shingles: reworded attempts share most of their characters even
when words move, get padded with style words or lose a few letters, and the normalised text
already undoes leetspeak, homoglyphs and invisible characters. MinHash (``datasketch``)
estimates the Jaccard similarity of two shingle sets from 64 numbers each, so a fingerprint
is 256 bytes that reveal nothing readable about the prompt (privacy: hashes, not text).

Two ways to find near-duplicates live here: :class:`LinearIndex`, a plain scan that is
obviously right and serves as the oracle in tests, and :class:`LshIndex`, datasketch's
locality-sensitive hashing index, which answers in time independent of the index size and
takes incremental inserts.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate, chain
from typing import Protocol

import numpy as np
from datasketch import MinHash

NUM_PERM = 64
SHINGLE = 4
_SEED = 20240611
_SCHEME = "affine32"  # datasketch's permutation scheme; _minhash reproduces it
_FEW = 8  # up to this many candidates are scored one by one (LshIndex._scores)
_LSH_BANDS = (32, 2)  # 32 bands of 2 rows: J = 0.25 is proposed with p ~ 0.87
assert _LSH_BANDS[0] * _LSH_BANDS[1] == NUM_PERM


@lru_cache(maxsize=1)
def _permutations() -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine permutations for our seed, as two contiguous uint32 arrays."""
    a, b = MinHash(num_perm=NUM_PERM, seed=_SEED, scheme=_SCHEME).permutations
    return np.ascontiguousarray(a, dtype=np.uint32), np.ascontiguousarray(b, dtype=np.uint32)


_MIXED: dict[bytes, int] = {}
"""Each shingle seen so far with its input hash to the permutations: MurmurHash3's 32-bit
finalizer (``fmix32``, which datasketch's "affine32" scheme applies to each input hash) of
its CRC-32. Natural text reuses a small set of 4-byte shingles, so nearly every shingle of
a prompt is found here and its hash costs one dict lookup (see :func:`_minhash`)."""
_MIXED_MAX = 1 << 17
"""Shingles remembered at most (~20 MB); past it the memory starts afresh."""


def _fmix32(shingle: bytes) -> int:
    """datasketch's input hash of ``shingle``: ``fmix32(crc32(shingle))`` (MurmurHash3's
    finalizer, datasketch.minhash._fmix with _FMIX_CONSTANTS[32]), in 32-bit arithmetic."""
    h = zlib.crc32(shingle)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


def _minhashes(shingle_sets: Sequence[set[bytes]]) -> np.ndarray:
    """The MinHash signature of each of ``shingle_sets`` (one row each), bit for bit what
    datasketch's ``MinHash(num_perm=64, seed=_SEED, hashfunc=zlib.crc32, scheme="affine32")``
    holds after ``update_batch`` of the same shingles (the test suite checks it against
    datasketch itself, and the stored fingerprints are compared with these). Every set must
    hold at least one shingle (:func:`shingles` never returns an empty one).

    Why not ``MinHash.update_batch``: a prompt has a few dozen shingles, and on arrays that
    small NumPy's fixed cost per call is most of the work. ``update_batch`` makes about twice
    as many calls as the arithmetic needs (a fresh all-ones array per prompt, ``np.minimum``
    with it, conversions, a copy), so it cost ~27 us per prompt. Here the input hashes come
    from :data:`_MIXED` instead of a CRC per shingle and the finalizer's eight NumPy
    operations (2% of a whole prompt check's instructions, docs/service.md), and NumPy
    permutes them and takes the minima in uint32, which wraps modulo 2**32 as datasketch's
    does: four calls for all the sets at once (a batch of checks, :func:`fingerprints`),
    each set's minima taken over its own rows.
    """
    a, b = _permutations()
    hashes = list(map(_MIXED.get, chain.from_iterable(shingle_sets)))
    if None in hashes:  # shingles not seen before: hash them and remember them
        if len(_MIXED) > _MIXED_MAX:
            _MIXED.clear()
        hashes = []
        for shingle in chain.from_iterable(shingle_sets):
            h = _MIXED.get(shingle)
            if h is None:
                h = _MIXED[shingle] = _fmix32(shingle)
            hashes.append(h)
    permuted = np.multiply.outer(np.array(hashes, dtype=np.uint32), a)
    permuted += b
    starts = list(accumulate(map(len, shingle_sets[:-1]), initial=0))
    return np.minimum.reduceat(permuted, starts, axis=0)


def shingles(text: str, k: int = SHINGLE) -> set[bytes]:
    """The character ``k``-shingles of ``text`` (the whole text when it is shorter)."""
    data = text.encode("utf-8")
    if len(data) <= k:
        return {data}
    return {data[i : i + k] for i in range(len(data) - k + 1)}


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A prompt's MinHash signature, the size of its shingle set and a digest for exact hits."""

    hashvalues: np.ndarray
    size: int
    digest: str

    def to_bytes(self) -> bytes:
        return self.hashvalues.astype("<u4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, size: int, digest: str = "") -> Fingerprint:
        if len(data) != NUM_PERM * 4:
            raise ValueError(f"a fingerprint is {NUM_PERM * 4} bytes, got {len(data)}")
        return cls(np.frombuffer(data, dtype="<u4").astype(np.uint32), size, digest)


def fingerprint(normalised: str) -> Fingerprint:
    """Fingerprint an already normalised prompt (``PromptReading.normalised``)."""
    return fingerprints([normalised])[0]


def fingerprints(normalised: Sequence[str]) -> list[Fingerprint]:
    """:func:`fingerprint` of each prompt, their MinHash signatures computed together (a
    batch of checks pays NumPy's fixed cost per call once, not once per prompt)."""
    if not normalised:
        return []
    texts = [" ".join(n.split()) for n in normalised]
    sets = [shingles(t) for t in texts]
    rows = _minhashes(sets)
    return [
        Fingerprint(row, len(sh), hashlib.sha256(t.encode("utf-8")).hexdigest())
        for row, sh, t in zip(rows, sets, texts, strict=True)
    ]


def similarity(a: Fingerprint, b: Fingerprint, min_containment_shingles: int = 12) -> float:
    """How near-duplicate two prompts are, 0..1: the larger of the estimated Jaccard
    similarity and the estimated containment of the smaller shingle set in the larger.

    Containment catches padding (style words added around a blocked prompt) and splitting
    (a part of it sent alone), which dilute Jaccard. It only counts when the smaller set has
    at least ``min_containment_shingles`` shingles, so a two-word prompt is not "contained"
    in every longer one.
    """
    if a.digest and a.digest == b.digest:
        return 1.0
    j = float(np.count_nonzero(a.hashvalues == b.hashvalues)) / NUM_PERM
    return _combine(j, a.size, b.size, min_containment_shingles)


def _combine(j: float, size_a: float, size_b: float, min_containment_shingles: int) -> float:
    """:func:`similarity` from the estimated Jaccard ``j`` and the two shingle counts."""
    small = min(size_a, size_b)
    if small < min_containment_shingles or j == 0.0:
        return j
    inter = j * (size_a + size_b) / (1.0 + j)
    return max(j, min(1.0, inter / small))


@dataclass(frozen=True, slots=True)
class Hit:
    """An indexed fingerprint that resembles the query."""

    key: int
    similarity: float
    owner: str | None


class FingerprintIndex(Protocol):
    """What the monitor needs of an index: add one, find the near-duplicates of one."""

    def add(self, key: int, fp: Fingerprint, owner: str | None) -> None: ...

    def near(self, fp: Fingerprint, threshold: float, limit: int = 32) -> list[Hit]: ...

    def has_near(self, fp: Fingerprint, owner: str | None, threshold: float) -> bool: ...

    def __len__(self) -> int: ...


class LinearIndex:
    """Compares the query with every entry. Slow on large indexes; the oracle in tests."""

    def __init__(self, min_containment_shingles: int = 12) -> None:
        self._entries: dict[int, tuple[Fingerprint, str | None]] = {}
        self._min = min_containment_shingles

    def add(self, key: int, fp: Fingerprint, owner: str | None) -> None:
        self._entries[key] = (fp, owner)

    def near(self, fp: Fingerprint, threshold: float, limit: int = 32) -> list[Hit]:
        hits = []
        for key, (other, owner) in self._entries.items():
            s = similarity(fp, other, self._min)
            if s >= threshold:
                hits.append(Hit(key, s, owner))
        return sorted(hits, key=lambda h: -h.similarity)[:limit]

    def has_near(self, fp: Fingerprint, owner: str | None, threshold: float) -> bool:
        """Whether an entry of ``owner`` is at least ``threshold`` similar."""
        return any(
            o == owner and similarity(fp, other, self._min) >= threshold
            for other, o in self._entries.values()
        )

    def __len__(self) -> int:
        return len(self._entries)


class LshIndex:
    """Locality-sensitive hashing over the MinHash signature proposes candidates; each is
    then scored with the same arithmetic as :func:`similarity` (so it never reports what the
    oracle would not), all candidates at once with NumPy.

    The banding (32 bands of 2 rows) is deliberately generous: a padded prompt that contains
    a blocked one has a low Jaccard similarity (0.25 for four times the shingles), and narrow
    bands still propose it with probability ~0.87, where banding tuned for a 0.5 threshold
    would almost never. Unrelated prompts (Jaccard ~0.02) are proposed ~1% of the time, which
    the exact check discards. A band's two 32-bit values are read as one 64-bit key, so a
    query is 32 dict lookups (datasketch's own ``MinHashLSH`` byte-swaps and slices each band
    in Python, ten times slower on the check's hot path). Exact digests are looked up too."""

    def __init__(self, min_containment_shingles: int = 12) -> None:
        # A row of the matrix is one distinct fingerprint; the entries of identical texts
        # (the same digest: a popular blocked prompt pasted by many accounts) share it, so a
        # query proposes and scores each distinct text once, not once per account.
        self._bands: list[dict[int, list[int]]] = [{} for _ in range(_LSH_BANDS[0])]
        self._matrix = np.zeros((64, NUM_PERM), dtype=np.uint32)
        self._sizes = np.zeros(64, dtype=np.float64)
        self._entries: list[list[tuple[int, str | None]]] = []  # per row: (key, owner)
        self._row_of_digest: dict[str, int] = {}
        self._by_owner: dict[str | None, list[int]] = {}  # owner -> rows of its entries
        self._known: set[int] = set()
        self._min = min_containment_shingles

    @staticmethod
    def _band_keys(fp: Fingerprint) -> list[int]:
        return np.ascontiguousarray(fp.hashvalues, dtype=np.uint32).view(np.uint64).tolist()

    def add(self, key: int, fp: Fingerprint, owner: str | None) -> None:
        if key in self._known:
            return
        self._known.add(key)
        row = self._row_of_digest.get(fp.digest) if fp.digest else None
        if row is None:
            row = self._add_row(fp)
        self._entries[row].append((key, owner))
        self._by_owner.setdefault(owner, []).append(row)

    def _add_row(self, fp: Fingerprint) -> int:
        n = len(self._entries)
        if n == len(self._matrix):  # grow by doubling: amortised O(1) inserts
            self._matrix = np.concatenate([self._matrix, np.zeros_like(self._matrix)])
            self._sizes = np.concatenate([self._sizes, np.zeros_like(self._sizes)])
        self._matrix[n] = fp.hashvalues
        self._sizes[n] = fp.size
        self._entries.append([])
        for table, band in zip(self._bands, self._band_keys(fp), strict=True):
            table.setdefault(band, []).append(n)
        if fp.digest:
            self._row_of_digest[fp.digest] = n
        return n

    def near(self, fp: Fingerprint, threshold: float, limit: int = 32) -> list[Hit]:
        """Entries at least ``threshold`` similar, best first (at most ``limit``)."""
        if not self._entries:
            return []
        exact = self._row_of_digest.get(fp.digest) if fp.digest else None
        found: set[int] = set() if exact is None else {exact}
        # the 32 band look-ups run in C (map over the tables and the keys side by side);
        # the rows go into the set in the same order as a loop over the bands would put them
        found.update(chain.from_iterable(filter(None, map(dict.get, self._bands,
                                                          self._band_keys(fp)))))
        if not found:
            return []
        rows = np.fromiter(found, dtype=np.int64, count=len(found))
        score = self._scores(rows, fp)
        if exact is not None:
            score[rows == exact] = 1.0
        above = np.flatnonzero(score >= threshold)
        if len(above) > limit:  # every row holds an entry: the best `limit` rows suffice
            above = above[np.argpartition(-score[above], limit - 1)[:limit]]
        hits: list[Hit] = []
        for i in sorted(above.tolist(), key=lambda i: -score[i]):
            s = float(score[i])
            for key, owner in self._entries[int(rows[i])]:
                hits.append(Hit(key, s, owner))
                if len(hits) == limit:
                    return hits
        return hits

    def has_near(self, fp: Fingerprint, owner: str | None, threshold: float) -> bool:
        """Whether an entry of ``owner`` is at least ``threshold`` similar: scores that
        owner's entries directly (an account has few), without the LSH candidates, so it
        is exact and costs nothing for an owner with no entry."""
        mine = self._by_owner.get(owner)
        if not mine:
            return False
        exact = self._row_of_digest.get(fp.digest) if fp.digest else None
        if exact is not None and exact in mine:
            return True
        return bool(np.any(self._scores(np.asarray(mine, dtype=np.int64), fp) >= threshold))

    def _scores(self, rows: np.ndarray, fp: Fingerprint) -> np.ndarray:
        """:func:`similarity` of ``fp`` with the entries at ``rows``, all at once (a few rows,
        the usual case, one by one: NumPy's fixed cost per operation is then most of it)."""
        if len(rows) <= _FEW:
            matrix, sizes, values = self._matrix, self._sizes, fp.hashvalues
            return np.array([
                _combine(int(np.count_nonzero(matrix[r] == values)) / NUM_PERM,
                         float(sizes[r]), fp.size, self._min)
                for r in rows.tolist()
            ])  # fmt: skip
        j = np.count_nonzero(self._matrix[rows] == fp.hashvalues, axis=1) / NUM_PERM
        sizes = self._sizes[rows]
        small = np.minimum(sizes, fp.size)
        inter = j * (sizes + fp.size) / (1.0 + j)
        with np.errstate(divide="ignore", invalid="ignore"):
            contained = np.where((small >= self._min) & (j > 0), np.minimum(1.0, inter / small), 0)
        return np.maximum(j, contained)

    def __len__(self) -> int:
        return len(self._known)
