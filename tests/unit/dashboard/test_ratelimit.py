"""Login attempts per client address (dashboard/ratelimit.py): token buckets on a given clock."""

from __future__ import annotations

import pytest

from batchd.dashboard import ratelimit


def test_a_burst_then_the_rate() -> None:
    limiter = ratelimit.Limiter()
    # 2,500 guesses in one second (what the issue measured): the first 10 are let through.
    allowed = sum(limiter.take("1.2.3.4", rate=10, now=i / 2500) == 0.0 for i in range(2500))
    assert allowed == 10
    wait = limiter.take("1.2.3.4", rate=10, now=1.0)
    assert wait == pytest.approx(5.0)  # one attempt every 6 s; 1 s of refill already counted
    assert ratelimit.retry_after(wait) == "5"
    assert limiter.take("1.2.3.4", rate=10, now=6.0) == 0.0
    assert limiter.take("1.2.3.4", rate=10, now=6.0) > 0.0
    assert limiter.take("5.6.7.8", rate=10, now=6.0) == 0.0  # another client has its own bucket


def test_a_bucket_refills_whole_and_no_further() -> None:
    limiter = ratelimit.Limiter()
    for _ in range(10):
        assert limiter.take("c", rate=10, now=0.0) == 0.0
    assert limiter.take("c", rate=10, now=0.0) > 0.0
    assert sum(limiter.take("c", rate=10, now=3600.0) == 0.0 for _ in range(20)) == 10


def test_the_least_recently_used_buckets_are_forgotten_past_the_cap() -> None:
    limiter = ratelimit.Limiter(max_clients=3)
    for client in "abc":
        limiter.take(client, rate=1, now=0.0)
    assert limiter.take("a", rate=1, now=0.0) > 0.0  # "a" is now the most recently used
    limiter.take("d", rate=1, now=0.0)  # "b" is forgotten
    assert limiter.take("b", rate=1, now=0.0) == 0.0
    assert limiter.take("a", rate=1, now=0.0) > 0.0


def test_client_keys() -> None:
    assert ratelimit.client_key("10.0.0.1") == "10.0.0.1"
    assert ratelimit.client_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert ratelimit.client_key("2001:db8::1") == ratelimit.client_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert ratelimit.client_key("2001:db8:0:1::1") != ratelimit.client_key("2001:db8::1")
    assert ratelimit.client_key(None) == "unknown" and ratelimit.client_key("testclient") == "testclient"
    assert ratelimit.retry_after(0.01) == "1" and ratelimit.retry_after(59.2) == "60"
