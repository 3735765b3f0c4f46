"""The multi-index-hashing index against the linear scan (the oracle): exact, incremental."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tutela.hashes.index import HashIndex, LinearScanIndex, MultiHashIndex
from tutela.hashes.segments import BUFFER_ROWS, SegmentedIndex
from tutela.hashes.signal import hamming, to_codes, to_hex


def _flip(code: np.ndarray, bits: np.ndarray) -> np.ndarray:
    out = code.copy()
    for b in bits:
        out[b // 8] ^= np.uint8(1 << (b % 8))
    return out


def _planted(rng: np.random.Generator, base: np.ndarray, n: int, max_d: int) -> np.ndarray:
    """``n`` queries, each a random stored hash with 0..max_d random bits flipped."""
    rows = rng.integers(0, len(base), n)
    return np.stack(
        [
            _flip(base[r], rng.choice(256, int(rng.integers(0, max_d + 1)), replace=False))
            for r in rows
        ]
    )


FAST = [MultiHashIndex, SegmentedIndex]


@pytest.fixture(params=FAST, ids=lambda c: c.__name__)
def fast_cls(request: pytest.FixtureRequest) -> type[HashIndex]:
    return request.param


def _both(
    codes: np.ndarray, ids: np.ndarray, cls: type[HashIndex] = MultiHashIndex
) -> tuple[HashIndex, LinearScanIndex]:
    fast, oracle = cls(), LinearScanIndex()
    fast.add(ids, codes)
    oracle.add(ids, codes)
    return fast, oracle


@pytest.mark.parametrize("radius", [0, 1, 15, 16, 31, 32, 47, 63])
def test_same_results_as_linear_scan(radius: int, fast_cls: type[HashIndex]) -> None:
    rng = np.random.default_rng(radius)
    codes = rng.integers(0, 256, (20_000, 32), dtype=np.uint8)
    # Clustered neighbours: near-duplicates at every distance up to radius + 8.
    near = np.stack(
        [
            _flip(codes[i % 100], rng.choice(256, i % (radius + 9), replace=False))
            for i in range(2_000)
        ]
    )
    codes = np.concatenate([codes, near])
    ids = np.arange(1, len(codes) + 1) * 7
    fast, oracle = _both(codes, ids, fast_cls)
    queries = _planted(rng, codes, 64, radius + 8)
    expected = oracle.search(queries, radius)
    assert fast.search(queries, radius) == expected
    assert any(h.distance == radius for h in expected) or radius == 0 or radius > 40


def test_boundary_distance_31_and_32(fast_cls: type[HashIndex]) -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (1, 32), dtype=np.uint8)
    at31 = _flip(base[0], rng.choice(256, 31, replace=False))
    at32 = _flip(base[0], rng.choice(256, 32, replace=False))
    fast = fast_cls()
    fast.add([5, 6], np.stack([at31, at32]))
    hits = fast.search(base, 31)
    assert [(h.id, h.distance) for h in hits] == [(5, 31)]
    assert {h.id for h in fast.search(base, 32)} == {5, 6}


def test_incremental_add_remove_readd_match_the_oracle(fast_cls: type[HashIndex]) -> None:
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, (5_000, 32), dtype=np.uint8)
    ids = np.arange(100, 5_100)
    fast, oracle = _both(codes[:4_000], ids[:4_000], fast_cls)
    queries = _planted(rng, codes, 40, 31)
    # adds into a built index
    fast.add(ids[4_000:], codes[4_000:])
    oracle.add(ids[4_000:], codes[4_000:])
    assert len(fast) == 5_000
    assert fast.search(queries, 31) == oracle.search(queries, 31)
    # deletes
    gone = rng.choice(ids, 1_500, replace=False)
    assert fast.remove(gone.tolist()) == 1_500
    oracle.remove(gone.tolist())
    assert fast.remove(gone.tolist()) == 0  # already gone
    assert len(fast) == 3_500
    assert int(gone[0]) not in fast
    assert fast.search(queries, 31) == oracle.search(queries, 31)
    probe = np.concatenate([ids, [0, 10**12]])
    assert (fast.present(probe) == oracle.present(probe)).all()
    # re-adding a removed id (out of order) works and is found again
    back = gone[:10]
    slots = back - 100
    fast.add(back, codes[slots])
    oracle.add(back, codes[slots])
    assert int(back[0]) in fast
    assert fast.search(queries, 31) == oracle.search(queries, 31)
    with pytest.raises(ValueError, match="already"):
        fast.add(back[:1], codes[slots[:1]])


def test_compaction_keeps_results() -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, (8_000, 32), dtype=np.uint8)
    ids = np.arange(8_000)
    fast, oracle = _both(codes, ids)
    queries = _planted(rng, codes, 50, 31)
    gone = rng.choice(ids, 4_500, replace=False).tolist()  # more dead than live: compacts
    fast.remove(gone)
    oracle.remove(gone)
    assert fast._slots.dead == 0  # compacted
    assert len(fast) == len(oracle) == 8_000 - len(gone)
    assert fast.search(queries, 31) == oracle.search(queries, 31)
    fast.add([10**9], codes[:1])
    oracle.add([10**9], codes[:1])
    assert fast.search(queries, 31) == oracle.search(queries, 31)


def test_radius_and_shape_checked(fast_cls: type[HashIndex]) -> None:
    index = fast_cls()
    with pytest.raises(ValueError, match="radius"):
        index.search(np.zeros((1, 32), np.uint8), 64)
    with pytest.raises(ValueError, match="ids for"):
        index.add([1, 2], np.zeros((1, 32), np.uint8))
    with pytest.raises(ValueError, match="duplicate"):
        index.add([1, 1], np.zeros((2, 32), np.uint8))
    assert index.search(np.zeros((1, 32), np.uint8), 31) == []


def test_segments_merge_logarithmically_and_stay_exact() -> None:
    rng = np.random.default_rng(5)
    n = 5 * BUFFER_ROWS + 1_234
    codes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    ids = rng.permutation(np.arange(10, 10 + n))  # ids arrive in any order
    fast, oracle = SegmentedIndex(), LinearScanIndex()
    queries = _planted(rng, codes, 40, 31)
    for start in range(0, n, 3_000):  # small adds: buffer, then segments, then merges
        fast.add(ids[start : start + 3_000], codes[start : start + 3_000])
        oracle.add(ids[start : start + 3_000], codes[start : start + 3_000])
        assert fast.search(queries, 31) == oracle.search(queries, 31)
    sizes = fast.segment_sizes
    assert 0 <= n - sum(sizes) < BUFFER_ROWS  # the rest waits in the unsorted buffer
    assert all(a > 2 * b for a, b in itertools.pairwise(sizes))  # log-structured
    assert len(fast) == n
    # removing most of the big segment rewrites it from its live rows
    gone = ids[: n // 2 + 500]
    assert fast.remove(gone.tolist()) == len(gone)
    oracle.remove(gone.tolist())
    assert len(fast) == n - len(gone)
    assert fast.search(queries, 31) == oracle.search(queries, 31)
    assert fast.search(queries, 47) == oracle.search(queries, 47)
    assert int(gone[0]) not in fast and int(ids[-1]) in fast


def test_hex_round_trip_and_hamming() -> None:
    hexes = ["0" * 64, "f" * 64, "8" + "0" * 63]
    assert to_hex(to_codes(hexes)) == hexes
    assert hamming(hexes[0], hexes[1]) == 256
    assert hamming(hexes[0], hexes[2]) == 1
    # MSB-first: the first hex digit is the first byte's high nibble, as ThreatExchange has it
    assert to_codes(hexes[2:])[0, 0] == 0x80
