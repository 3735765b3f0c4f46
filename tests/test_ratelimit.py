"""The per-key token bucket, with explicit clocks (no sleeping, no flakiness)."""

from __future__ import annotations

from tutela.api.ratelimit import RateLimiter


def test_bucket_bursts_to_the_minute_allowance_then_refills() -> None:
    limiter = RateLimiter(per_minute=60)  # one per second, burst of 60
    assert all(limiter.allow("k", now=100.0) == 0 for _ in range(60))
    wait = limiter.allow("k", now=100.0)
    assert wait == 1  # one token comes back within a second
    assert limiter.allow("k", now=100.5) >= 1
    assert limiter.allow("k", now=101.01) == 0
    assert limiter.allow("other", now=101.01) == 0  # buckets are per key


def test_retry_after_grows_with_a_slow_rate() -> None:
    limiter = RateLimiter(per_minute=2)  # one token every 30 s
    assert limiter.allow("k", now=0.0) == 0
    assert limiter.allow("k", now=0.0) == 0
    assert limiter.allow("k", now=0.0) == 30
    assert limiter.allow("k", now=20.0) == 10


def test_workers_share_the_limit() -> None:
    limiter = RateLimiter(per_minute=100, workers=4)
    assert limiter.capacity == 25
    assert sum(limiter.allow("k", now=0.0) == 0 for _ in range(40)) == 25


def test_zero_disables() -> None:
    limiter = RateLimiter(per_minute=0)
    assert not limiter.enabled
    assert all(limiter.allow("k", now=0.0) == 0 for _ in range(10_000))
