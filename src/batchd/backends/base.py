"""The contract every model backend fulfils, and every member its callers use.

The engine owns retries, timeouts and concurrency; admission to a route's slots (the route's
semaphore, the prefix scheduler) happens before a backend is called, in `engine.router.Route.admit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from batchd.config.routes import BackendKind


class InstantAnswer(Protocol):
    """A backend's synchronous answer: the Message and the seconds due before it (a requested delay).

    Raises `exceptions.BackendError` as `create_message` would. The dispatcher calls it in line,
    without a task, a timeout or a semaphore round trip.
    """

    def __call__(self, params: dict[str, Any], *, attempt: int = 1) -> tuple[dict[str, Any], float]: ...


class Backend(Protocol):
    """Turns one prepared Messages request into one Message object.

    `params` has already been validated and normalised by `batchd.params.prepare`
    (seed shorthand expanded into real tools, citations and thinking budgets).
    Returns the Message as a JSON-ready dict; raises `exceptions.BackendError` (with
    `retryable`) on failure.
    """

    @property
    def kind(self) -> BackendKind:
        """What kind of backend this is (a route table's `backend`)."""
        ...

    @property
    def instant(self) -> InstantAnswer | None:
        """The synchronous answer of a backend that needs no I/O (the simulator at zero latency),
        else None: the backend is then only ever awaited."""
        ...

    async def create_message(
        self, params: dict[str, Any], *, attempt: int = 1, betas: Sequence[str] = ()
    ) -> dict[str, Any]:
        """attempt: counts from 1 (the dispatcher's retries); betas: `anthropic-beta` values the
        client sent to `POST /v1/messages`. A backend with no use for either ignores it."""
        ...

    async def count_tokens(self, params: dict[str, Any], *, betas: Sequence[str] = ()) -> int:
        """The input tokens `params` would take (`POST /v1/messages/count_tokens`), by the upstream's
        own tokenizer where it has one. `params` come from `batchd.params.prepare_count`: their
        `max_tokens` is a placeholder, never sent. Raises `exceptions.BackendError` as
        `create_message` does."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ListsModels(Protocol):
    """A backend whose upstream lists its models (`GET /v1/models` there)."""

    async def model_ids(self) -> list[str]: ...
