"""The contract every model backend fulfils."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Protocol

#: Set by the engine around each backend call. A backend that holds calls in a queue of its own
#: before sending them (the prefix scheduler) calls it with True as a call starts to wait there
#: and with False as it leaves: the call's timeout stops meanwhile and runs again in full from
#: then, since waiting for an engine slot is not the engine being slow.
call_waiting: ContextVar[Callable[[bool], None] | None] = ContextVar("call_waiting", default=None)


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
