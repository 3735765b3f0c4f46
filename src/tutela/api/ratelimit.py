"""Per-key rate limiting: a token bucket per API key, in each worker's memory.

The bucket holds a minute's allowance and refills continuously, so a key may burst up to its
per-minute limit and then proceeds at the steady rate. Buckets live in the worker process,
which keeps the check off the database; with ``--workers N`` each worker enforces
``ceil(limit / N)`` (the kernel spreads connections evenly enough that the sum is the
configured limit within a small margin).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``allow(key)`` returns 0 when the request may proceed, else seconds to wait."""

    def __init__(self, per_minute: int, workers: int = 1) -> None:
        self.capacity = math.ceil(per_minute / max(workers, 1)) if per_minute > 0 else 0
        self.rate = self.capacity / 60.0
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def allow(self, key: str, now: float | None = None) -> int:
        if not self.enabled:
            return 0
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(self.capacity), now)
            bucket.tokens = min(
                float(self.capacity), bucket.tokens + (now - bucket.updated) * self.rate
            )
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0
            # the epsilon keeps float noise (10.000000001 s) from adding a whole second
            return max(1, math.ceil((1.0 - bucket.tokens) / self.rate - 1e-6))
