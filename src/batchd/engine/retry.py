"""Retry policy: pure functions, no I/O."""

from __future__ import annotations

import random

from batchd import exceptions


def backoff(attempt: int, *, base: float, ceiling: float, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff before retry number `attempt` (1 = first retry)."""
    cap = min(ceiling, base * (2 ** (attempt - 1)))
    return (rng or random).uniform(cap / 2, cap)


def delay_for(
    error: exceptions.BackendError,
    attempt: int,
    *,
    base: float,
    ceiling: float,
    rng: random.Random | None = None,
) -> float:
    """The wait before the next attempt: the upstream's retry-after wins when it gave one."""
    if error.retry_after is not None:
        return max(0.0, error.retry_after)
    return backoff(attempt, base=base, ceiling=ceiling, rng=rng)


def should_retry(
    error: exceptions.BackendError,
    *,
    attempts: int,
    max_attempts: int,
    now: float,
    delay: float,
    deadline: float,
) -> bool:
    """Retry only retryable errors, within the attempt budget and before the batch expires."""
    return error.retryable and attempts < max_attempts and now + delay < deadline
