from __future__ import annotations

import random

from batchd import exceptions
from batchd.engine import retry


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    delays = [retry.backoff(n, base=1.0, ceiling=8.0, rng=rng) for n in range(1, 8)]
    assert 0.5 <= delays[0] <= 1.0
    assert 2.0 <= delays[2] <= 4.0
    assert all(4.0 <= d <= 8.0 for d in delays[4:])


def test_retry_after_wins() -> None:
    err = exceptions.BackendError("slow down", status=429, retryable=True, retry_after=3.5)
    assert retry.delay_for(err, 1, base=0.1, ceiling=1.0) == 3.5


def test_should_retry_respects_kind_budget_and_deadline() -> None:
    transient = exceptions.BackendError(retryable=True)
    final = exceptions.BackendError(retryable=False)

    def should_retry(error: exceptions.BackendError, attempts: int, delay: float = 1.0) -> bool:
        return retry.should_retry(
            error, attempts=attempts, max_attempts=3, now=100.0, delay=delay, deadline=200.0
        )

    assert should_retry(transient, attempts=1)
    assert not should_retry(final, attempts=1)
    assert not should_retry(transient, attempts=3)
    assert not should_retry(transient, attempts=1, delay=150.0)
    assert exceptions.BackendTimeout().retryable
