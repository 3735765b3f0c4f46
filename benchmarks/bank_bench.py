"""Hash-bank matching: Tutela's index against ThreatExchange's own PDQ index, same data, same run.

For each bank size (default 1M and 10M random PDQ hashes) the script makes one data set,
one set of queries and one exact ground truth (a NumPy popcount linear scan, independent of
FAISS), then builds and measures each index in its own child process (so that one index's
memory cannot hide or inflate the other's):

- build time, from the same list of 64-hex signal strings;
- query latency for one image = its 8 dihedral hashes (p50/p99/mean over the query set;
  half the images are planted near-duplicates of a bank entry at distance 0..31, half match
  nothing, as most real images);
- memory: resident-set growth of the child during the build (VmRSS and peak VmHWM, minus
  the RSS once the input list exists);
- recall at distance <= 31 against the ground truth (must be 1.0), and no false results;
- time to add 1,000 hashes to the built index, and whether the added hashes are then found.

ThreatExchange's index is ``threatexchange.signal_type.pdq.pdq_index.PDQIndex`` (what
``PdqSignal.get_index_cls()`` returns), used through its public API (``build``, ``query``
per hash, ``add_all``); its batched inner FAISS search is measured too, as the fairest
possible reading of it. FAISS runs single-threaded in both (pin the run with
``taskset -c 1``). Run::

    taskset -c 1 .venv/bin/python benchmarks/bank_bench.py --sizes 1000000 10000000
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

DIHEDRAL = 8
THRESHOLD = 31
ADD_COUNT = 1_000


@dataclass
class Workload:
    """Everything both indexes see: bank codes, queries, ground truth, extra hashes to add."""

    codes: np.ndarray  # (n, 32) uint8
    queries: np.ndarray  # (q, 8, 32) uint8: 8 "dihedral" hashes per image
    planted: np.ndarray  # (q,) bool: image 0..31 bits from a bank entry
    truth: list[set[tuple[int, int]]]  # for the first r images: {(hash no., bank position)}
    extra: np.ndarray  # (1000, 32) uint8, added after the build


def _flip(code: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    bits = np.unpackbits(code)
    where = rng.choice(256, k, replace=False)
    bits[where] ^= 1
    return np.packbits(bits)


def make_workload(n: int, n_queries: int, n_truth: int, seed: int) -> Workload:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    queries = rng.integers(0, 256, (n_queries, DIHEDRAL, 32), dtype=np.uint8)
    planted = np.zeros(n_queries, dtype=bool)
    for i in range(0, n_queries, 2):  # every other image is a near-duplicate of an entry
        target = int(rng.integers(0, n))
        slot = int(rng.integers(0, DIHEDRAL))  # the matching variant may be any of the 8
        queries[i, slot] = _flip(codes[target], int(rng.integers(0, THRESHOLD + 1)), rng)
        planted[i] = True
    words = codes.view(np.uint64)
    truth: list[set[tuple[int, int]]] = []
    for i in range(min(n_truth, n_queries)):
        found: set[tuple[int, int]] = set()
        for j in range(DIHEDRAL):
            q = queries[i, j].view(np.uint64)
            dist = np.bitwise_count(words ^ q).sum(axis=1)
            found.update((j, int(p)) for p in np.flatnonzero(dist <= THRESHOLD))
        truth.append(found)
    extra = rng.integers(0, 256, (ADD_COUNT, 32), dtype=np.uint8)
    return Workload(codes, queries, planted, truth, extra)


def _rss_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                values[key] = int(value.split()[0])
    return values["VmRSS"], values["VmHWM"]


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def _hexes(codes: np.ndarray) -> list[str]:
    return [row.tobytes().hex() for row in codes]


def _latency(fn: Callable[[int], Any], n: int) -> dict[str, float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 4),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 4),
        "mean_ms": round(statistics.fmean(times), 4),
    }


# --- the two contenders -------------------------------------------------------------------
# Both are built in one child process, one after the other, and their queries are timed
# interleaved (ours, theirs, ours, theirs ...): on a shared machine, load from other
# processes then falls on both alike instead of on whichever ran during a busy minute.
def _build_ours(cls: type, signals: list[str]) -> tuple[Any, Callable[[list[str]], list]]:
    from tutela.hashes.signal import to_codes

    index = cls()
    ids = np.arange(1, len(signals) + 1, dtype=np.int64)  # entry ids (database keys)
    step = 1_000_000
    for s in range(0, len(signals), step):
        index.add(ids[s : s + step], to_codes(signals[s : s + step]))

    def query(hashes: list[str]) -> list[tuple[int, int]]:
        return [(h.query, h.id - 1) for h in index.search(to_codes(hashes), THRESHOLD)]

    return index, query


def build_tutela(signals: list[str]) -> tuple[Any, Callable[[list[str]], list]]:
    from tutela.hashes.segments import SegmentedIndex

    return _build_ours(SegmentedIndex, signals)


def build_tutela_faiss(signals: list[str]) -> tuple[Any, Callable[[list[str]], list]]:
    from tutela.hashes.index import MultiHashIndex

    return _build_ours(MultiHashIndex, signals)


def build_threatexchange(
    signals: list[str],
) -> tuple[Any, Callable[[list[str]], list[tuple[int, int]]]]:
    from threatexchange.signal_type.pdq.pdq_index import PDQIndex

    index = PDQIndex.build((s, i) for i, s in enumerate(signals))  # entry = bank position

    def query(hashes: list[str]) -> list[tuple[int, int]]:
        out = []
        for j, h in enumerate(hashes):  # its public API takes one hash at a time
            out.extend((j, m.metadata) for m in index.query(h))
        return out

    return index, query


def _measured_build(build: Callable[[list[str]], Any], signals: list[str]) -> tuple[Any, dict]:
    gc.collect()
    base, _ = _rss_kib()
    _reset_peak()
    start = time.perf_counter()
    built = build(signals)
    seconds = time.perf_counter() - start
    rss, peak = _rss_kib()
    return built, {
        "build_s": round(seconds, 2),
        "rss_growth_mib": round((rss - base) / 1024, 1),
        "peak_growth_mib": round((peak - base) / 1024, 1),
    }


def _recall(query: Callable[[list[str]], list[tuple[int, int]]], w: Workload, q_hex: list) -> dict:
    hits = false = wanted = 0
    for i, truth in enumerate(w.truth):
        got = set(query(q_hex[i]))
        wanted += len(truth)
        hits += len(truth & got)
        false += len(got - truth)
    return {
        "recall": round(hits / wanted, 6) if wanted else None,
        "truth_pairs": wanted,
        "false_results": false,
    }


def run_pair(w: Workload, targets: list[str]) -> dict[str, Any]:
    signals = _hexes(w.codes)
    q_hex = [_hexes(q) for q in w.queries]
    extra_hex = _hexes(w.extra)
    n = len(w.codes)
    builders = {
        "tutela": build_tutela,
        "tutela_faiss": build_tutela_faiss,
        "threatexchange": build_threatexchange,
    }
    built: dict[str, Any] = {}
    report: dict[str, dict[str, Any]] = {}
    for name in targets:
        built[name], report[name] = _measured_build(builders[name], signals)
    del signals
    gc.collect()
    times: dict[str, list[float]] = {name: [] for name in targets}
    for i in range(len(q_hex)):
        for name in targets:
            query = built[name][1]
            start = time.perf_counter()
            query(q_hex[i])
            times[name].append((time.perf_counter() - start) * 1000)
    for name in targets:
        t = sorted(times[name])
        report[name]["query_8_dihedral"] = {
            "p50_ms": round(statistics.median(t), 3),
            "p99_ms": round(t[min(len(t) - 1, int(len(t) * 0.99))], 3),
            "mean_ms": round(statistics.fmean(t), 3),
        }
        report[name].update(_recall(built[name][1], w, q_hex))
    if "threatexchange" in built:
        te = built["threatexchange"][0]
        report["threatexchange"]["query_8_dihedral_batched_inner_faiss"] = _latency(
            lambda i: te.index.search_with_distance_in_result(q_hex[i], THRESHOLD), len(q_hex)
        )
    # adding 1,000 hashes to the built index, then finding them; removing them again
    names = {
        "tutela": "tutela SegmentedIndex (the matcher's: sorted multi-index-hashing segments, "
        "16x16 bits, NumPy; buffer + logarithmic merges; tombstones)",
        "tutela_faiss": "tutela MultiHashIndex (FAISS IndexBinaryMultiHash 16x16, nflip=1, "
        "tombstones)",
    }
    for name in ("tutela", "tutela_faiss"):
        if name not in built:
            continue
        from tutela.hashes.signal import to_codes

        index, query = built[name]
        extra_ids = np.arange(n + 1, n + 1 + ADD_COUNT, dtype=np.int64)
        start = time.perf_counter()
        index.add(extra_ids, to_codes(extra_hex))
        report[name]["add_1000_ms"] = round((time.perf_counter() - start) * 1000, 2)
        report[name]["added_found"] = all(
            (0, n + k) in query([extra_hex[k]]) for k in range(0, ADD_COUNT, 50)
        )
        start = time.perf_counter()
        report[name]["removed"] = index.remove(extra_ids.tolist())
        report[name]["remove_1000_ms"] = round((time.perf_counter() - start) * 1000, 2)
        report[name]["index"] = names[name]
    if "threatexchange" in built:
        index, query = built["threatexchange"]
        start = time.perf_counter()
        index.add_all((h, n + k) for k, h in enumerate(extra_hex))
        report["threatexchange"]["add_1000_ms"] = round((time.perf_counter() - start) * 1000, 2)
        report["threatexchange"]["added_found"] = all(
            (0, n + k) in query([extra_hex[k]]) for k in range(0, ADD_COUNT, 50)
        )
        report["threatexchange"]["remove_1000_ms"] = None  # PDQIndex cannot delete
        report["threatexchange"]["index"] = (
            "threatexchange PDQIndex (PDQMultiHashIndex: FAISS IndexBinaryMultiHash 16x16 "
            "in IndexBinaryIDMap2)"
        )
    return report


def _child(w: Workload, targets: list[str], out: Any) -> None:
    # Imported here so that their import cost stays outside the measured builds.
    import faiss
    import threatexchange.signal_type.pdq.pdq_index  # noqa: F401

    import tutela.hashes.index
    import tutela.hashes.segments  # noqa: F401

    faiss.omp_set_num_threads(1)
    try:
        out.send(run_pair(w, targets))
    except BaseException as exc:  # report, do not hang the parent
        out.send({"error": f"{type(exc).__name__}: {exc}"})
    out.close()


def measure(w: Workload, targets: list[str]) -> dict[str, Any]:
    ctx = mp.get_context("fork")  # the child shares the workload pages, copy-on-write
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(w, targets, child))
    proc.start()
    child.close()
    result = parent.recv()
    proc.join()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--queries", type=int, default=400, help="images (8 hashes each)")
    ap.add_argument("--truth", type=int, default=40, help="images checked for recall")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument(
        "--contenders",
        nargs="+",
        default=["tutela", "threatexchange"],
        choices=["tutela", "tutela_faiss", "threatexchange"],
        help="tutela = the matcher's SegmentedIndex; tutela_faiss = the FAISS multi-hash "
        "variant (about 3.5x the memory: at 10M mind the machine)",
    )
    args = ap.parse_args()
    import faiss
    import threatexchange  # noqa: F401  (fail early when missing)

    meta = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "faiss": faiss.__version__,
        "cpus_allowed": len(__import__("os").sched_getaffinity(0)),
    }
    print(json.dumps({"meta": meta}), flush=True)
    for n in args.sizes:
        start = time.perf_counter()
        w = make_workload(n, args.queries, args.truth, args.seed)
        prep = time.perf_counter() - start
        print(
            json.dumps(
                {
                    "size": n,
                    "workload_s": round(prep, 1),
                    "truth_pairs": sum(len(t) for t in w.truth),
                }
            ),
            flush=True,
        )
        results = measure(w, args.contenders)
        print(json.dumps({"size": n, **results}), flush=True)
        if "tutela" in results and "threatexchange" in results:
            ours = results["tutela"]["query_8_dihedral"]["p50_ms"]
            theirs = results["threatexchange"]["query_8_dihedral"]["p50_ms"]
            print(
                json.dumps(
                    {
                        "size": n,
                        "query_p50_ratio_threatexchange_over_tutela": round(theirs / ours, 2),
                    }
                ),
                flush=True,
            )
        del w
        gc.collect()


if __name__ == "__main__":
    main()
