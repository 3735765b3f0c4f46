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
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

NUM_PERM = 64
SHINGLE = 4
_SEED = 20240611
_SCHEME = "affine32"
_LSH_BANDS = (32, 2)  # 32 bands of 2 rows: J = 0.25 is proposed with p ~ 0.87


@lru_cache(maxsize=1)
def _permutations() -> object:
    return MinHash(num_perm=NUM_PERM, seed=_SEED).permutations


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

    def lean(self) -> LeanMinHash:
        return LeanMinHash(seed=_SEED, hashvalues=self.hashvalues, scheme=_SCHEME)


def fingerprint(normalised: str) -> Fingerprint:
    """Fingerprint an already normalised prompt (``PromptReading.normalised``)."""
    text = " ".join(normalised.split())
    sh = shingles(text)
    mh = MinHash(
        num_perm=NUM_PERM,
        seed=_SEED,
        hashfunc=zlib.crc32,
        permutations=_permutations(),
        scheme=_SCHEME,
    )
    mh.update_batch(list(sh))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Fingerprint(mh.hashvalues.astype(np.uint32), len(sh), digest)


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
    small = min(a.size, b.size)
    if small < min_containment_shingles or j == 0.0:
        return j
    inter = j * (a.size + b.size) / (1.0 + j)
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

    def near(self, fp: Fingerprint, threshold: float) -> list[Hit]: ...

    def __len__(self) -> int: ...


class LinearIndex:
    """Compares the query with every entry. Slow on large indexes; the oracle in tests."""

    def __init__(self, min_containment_shingles: int = 12) -> None:
        self._entries: dict[int, tuple[Fingerprint, str | None]] = {}
        self._min = min_containment_shingles

    def add(self, key: int, fp: Fingerprint, owner: str | None) -> None:
        self._entries[key] = (fp, owner)

    def near(self, fp: Fingerprint, threshold: float) -> list[Hit]:
        hits = []
        for key, (other, owner) in self._entries.items():
            s = similarity(fp, other, self._min)
            if s >= threshold:
                hits.append(Hit(key, s, owner))
        return sorted(hits, key=lambda h: -h.similarity)

    def __len__(self) -> int:
        return len(self._entries)


class LshIndex:
    """datasketch's MinHash LSH proposes candidates, each is then scored exactly as
    :func:`similarity` does (so it never reports what the oracle would not).

    The banding (32 bands of 2 rows) is deliberately generous: a padded prompt that contains
    a blocked one has a low Jaccard similarity (0.25 for four times the shingles), and narrow
    bands still propose it with probability ~0.87, where datasketch's default banding for a
    0.5 threshold would almost never. Unrelated prompts (Jaccard ~0.02) are proposed ~1% of
    the time, which the exact check discards. Exact digests are looked up in a dict first."""

    def __init__(self, min_containment_shingles: int = 12) -> None:
        self._lsh = MinHashLSH(num_perm=NUM_PERM, params=_LSH_BANDS)
        self._entries: dict[int, tuple[Fingerprint, str | None]] = {}
        self._by_digest: dict[str, list[int]] = {}
        self._min = min_containment_shingles

    def add(self, key: int, fp: Fingerprint, owner: str | None) -> None:
        if key in self._entries:
            return
        self._entries[key] = (fp, owner)
        self._lsh.insert(key, fp.lean(), check_duplication=False)
        if fp.digest:
            self._by_digest.setdefault(fp.digest, []).append(key)

    def near(self, fp: Fingerprint, threshold: float) -> list[Hit]:
        if not self._entries:
            return []
        keys = set(self._lsh.query(fp.lean()))
        keys.update(self._by_digest.get(fp.digest, ()))
        hits = []
        for key in keys:
            other, owner = self._entries[key]
            s = similarity(fp, other, self._min)
            if s >= threshold:
                hits.append(Hit(key, s, owner))
        return sorted(hits, key=lambda h: -h.similarity)

    def __len__(self) -> int:
        return len(self._entries)
