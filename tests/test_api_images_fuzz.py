"""Bad-input corpus over HTTP: >= 1,000 mutated image files never give a 5xx or a hang.

The mutants are those of tests/test_decode_fuzz.py (truncated, bit-flipped, wrong headers,
huge declared sizes, wrong magic, garbage) made from benign images. Each goes through
``POST /v1/uploads/check`` with the real detectors: the answer is a stored decision (200) or
a 422 naming what is wrong — never a 5xx, and nothing is stored for a 422.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from test_api import Service
from test_decode_fuzz import _mutants

from tutela import Guard

pytestmark = pytest.mark.slow


def test_mutated_uploads_never_5xx(tmp_path: Path) -> None:
    guard = Guard.open(data_dir=tmp_path / "data", rate_limit_per_minute=0)
    guard.store.upgrade()
    guard.images.warm_up()
    svc = Service(guard)
    statuses: Counter[int] = Counter()
    slowest = 0.0
    with svc.client:
        for i, (family, fmt, data) in enumerate(_mutants()):
            t0 = time.perf_counter()
            res = svc.client.post(
                "/v1/uploads/check",
                files={"image": (f"m{i}.{fmt.lower()}", data, "application/octet-stream")},
                data={"account": f"fuzz-{i}"},
                headers=svc.headers(),
            )
            slowest = max(slowest, time.perf_counter() - t0)
            statuses[res.status_code] += 1
            assert res.status_code in (200, 422), (family, fmt, res.status_code, res.text)
            if res.status_code == 422:
                assert res.json()["error"]["message"]
                assert guard.store.decisions.for_account(f"fuzz-{i}") == []
            else:
                assert res.json()["kind"] == "upload"
    assert sum(statuses.values()) >= 1000, statuses
    assert statuses[422] > 500  # most mutants are unreadable, and are refused as such
    assert slowest < 30, slowest  # no hang (generous: the machine is shared)
