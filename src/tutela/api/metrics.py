"""Prometheus metrics: requests and latency per endpoint, decisions per verdict and category.

With several workers (``tutela serve --workers N``) each worker is a process, so the
collectors run in prometheus-client's multiprocess mode: ``serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start, and ``/metrics``
sums what every worker wrote there.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from tutela.decision import Decision

REQUESTS = Counter(
    "tutela_http_requests_total",
    "HTTP requests answered, by method, route template and status code",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "tutela_http_request_duration_seconds",
    "Time from request to the end of the response, by method and route template",
    ["method", "route"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CHECK_BATCHES = Histogram(
    "tutela_check_batch_size",
    "Prompt checks decided together in one transaction by a worker's checking thread "
    "(api/batcher.py): small batches under load pay the transaction's fixed cost more often",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
DECISIONS = Counter(
    "tutela_decisions_total",
    "Decisions recorded, by check kind, verdict and top category ('none' when none scored)",
    ["kind", "verdict", "category"],
)


_decision_series: dict[tuple[str, str, str], Any] = {}
"""``DECISIONS``' children by label values: ``labels()`` takes a lock and validates the
labels on every call. Bounded: kinds x verdicts x categories."""


def observe_decision(decision: Decision) -> None:
    key = (str(decision.kind), str(decision.verdict), decision.top_category() or "none")
    series = _decision_series.get(key)
    if series is None:  # a race only creates the same child twice
        series = _decision_series[key] = DECISIONS.labels(*key)
    series.inc()


def exposition() -> tuple[bytes, str]:
    """The metrics text and its content type (summed over workers in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
