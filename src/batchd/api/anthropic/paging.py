"""The `limit` query parameter of Anthropic's list endpoints (batches, models)."""

from __future__ import annotations

from batchd import exceptions

DEFAULT_LIMIT = 20  # items per page when `limit` is not given
MAX_LIMIT = 1000


def limit(raw: str | None) -> int:
    """`limit` as given in the query string, checked as Anthropic checks it."""
    if raw is None:
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise exceptions.InvalidRequest(f"limit: Input should be a valid integer, got {raw!r}") from None
    if not 1 <= value <= MAX_LIMIT:
        raise exceptions.InvalidRequest(f"limit: Input should be between 1 and {MAX_LIMIT}, got {value}")
    return value
