"""Costs of the evidence area on SQLite (WAL, synchronous=NORMAL) in a temporary directory.

- ``append``: one log entry per transaction (what a decision adds when logged on its own),
  p50/p99, with a signed checkpoint every 256 entries included in the timing;
- ``checkpoint``: signing a checkpoint over the whole log at its final size;
- ``verify``: a full ``audit verify`` (entries per second);
- ``proof``: building an inclusion proof at the final size, and checking it with the
  standalone ``tools/verify_proof.py`` (pure-Python Ed25519);
- ``merkle_root_1m``: the root of one million leaf hashes (pure function);
- ``vault``: sealing and opening a 1 MB item (AES-256-GCM + wrapped key + two log entries).

Run pinned::

    taskset -c 1 .venv/bin/python benchmarks/evidence_bench.py [--n 5000]
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from tutela.config import Settings
from tutela.decision import CheckKind, Decision, Signal, Verdict
from tutela.evidence import merkle
from tutela.evidence.service import Evidence

ROOT = Path(__file__).resolve().parents[1]


def _pct(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    args = ap.parse_args()
    out: dict[str, object] = {"n": args.n}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(
            None,
            data_dir=Path(tmp),
            audit_checkpoint_every=256,
            evidence_key=base64.b64encode(os.urandom(32)).decode(),
        )
        ev = Evidence.open(settings)
        d = Decision(
            Verdict.BLOCK,
            {"sexual_minors": 0.9},
            ["minor + sexual terms"],
            [Signal("prompt_lexicon", "minor", 0.9, {"terms": ["x"]})],
            kind=CheckKind.PROMPT,
            account="acct-1",
        )
        times = []
        for _ in range(args.n):
            t = time.perf_counter()
            ev.log.record_decision(d)
            times.append((time.perf_counter() - t) * 1000)
        out["append_ms"] = {
            "p50": round(statistics.median(times), 3),
            "p99": round(_pct(times, 0.99), 3),
            "max": round(max(times), 2),
        }
        ev.log.append("admin", {"x": 1})
        t = time.perf_counter()
        ev.log.checkpoint()
        out["checkpoint_ms"] = round((time.perf_counter() - t) * 1000, 2)
        t = time.perf_counter()
        result = ev.log.verify()
        dt = time.perf_counter() - t
        assert result.ok
        out["verify"] = {"seconds": round(dt, 3), "entries_per_s": round(result.entries / dt)}
        t = time.perf_counter()
        proof = ev.log.inclusion_proof(args.n // 2)
        out["proof_build_ms"] = round((time.perf_counter() - t) * 1000, 2)
        spec = importlib.util.spec_from_file_location("vp", ROOT / "tools/verify_proof.py")
        assert spec and spec.loader
        vp = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(vp)
        t = time.perf_counter()
        assert vp.verify(json.loads(json.dumps(proof))) == ""
        out["proof_verify_standalone_ms"] = round((time.perf_counter() - t) * 1000, 2)
        blob = os.urandom(1 << 20)
        t = time.perf_counter()
        (item,) = ev.vault.preserve(d, image=blob)
        seal = time.perf_counter() - t
        t = time.perf_counter()
        assert ev.vault.open(item.id, actor="bench", reason="bench") == blob
        out["vault_1mb_ms"] = {
            "seal": round(seal * 1000, 2),
            "open": round((time.perf_counter() - t) * 1000, 2),
        }
    leaves = [merkle.leaf_hash(i.to_bytes(8, "big")) for i in range(1_000_000)]
    t = time.perf_counter()
    merkle.root(leaves)
    out["merkle_root_1m_s"] = round(time.perf_counter() - t, 3)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
