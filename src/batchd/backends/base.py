"""The contract every model backend fulfils."""

from __future__ import annotations

from typing import Any, Protocol


class Backend(Protocol):
    """Turns one prepared Messages request into one Message object.

    `params` has already been validated and normalised by `batchd.params.prepare`
    (seed shorthand expanded into real tools, citations and thinking budgets).
    Returns the Message as a JSON-ready dict; raises `exceptions.BackendError` (with
    `retryable`) on failure. The engine owns retries, timeouts and concurrency.
    """

    name: str

    async def create_message(self, params: dict[str, Any]) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...
