"""The Store protocol: intent-named domain operations every store implements.

Invariants the implementations enforce (see ARCHITECTURE.md):
- a request gets at most one result: the first `complete_requests` wins, later ones are ignored;
- the transaction that writes results also moves `request_counts` and ends the batch when
  nothing is pending or running, so counts always add up and `ended` means done;
- `create_batch` returns only after every request is durably committed.

A store shared by several processes (PostgreSQL) also offers `async def listen(callback)`: it calls
`callback()` whenever any process announces new work; the dispatcher uses it when present.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from batchd import models


class Store(Protocol):
    #: Seconds the engine lets results gather before writing them in one commit.
    commit_interval: float

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def create_batch(
        self,
        *,
        workspace: str,
        custom_ids: Sequence[str],
        params: Sequence[bytes | memoryview],
        now: float,
        expires_at: float,
    ) -> models.Batch: ...

    async def get_batch(self, workspace: str, batch_id: str) -> models.Batch:
        """Raises BatchNotFound."""
        ...

    async def list_batches(
        self,
        workspace: str,
        *,
        after_id: str | None = None,
        before_id: str | None = None,
        limit: int = 20,
    ) -> tuple[list[models.Batch], bool]:
        """Newest first; returns (page, has_more). Raises BatchNotFound for a bad cursor."""
        ...

    async def cancel_batch(self, workspace: str, batch_id: str, now: float) -> models.Batch: ...

    async def delete_batch(self, workspace: str, batch_id: str) -> None:
        """Raises InvalidBatchState unless ended."""
        ...

    def iter_results(self, workspace: str, batch_id: str) -> AsyncIterator[bytes]:
        """JSONL chunks, one line per request. Raises InvalidBatchState/BatchNotFound on the first step."""
        ...

    async def claim_requests(
        self, worker_id: str, limit: int, *, now: float, lease: float
    ) -> list[models.ClaimedRequest]: ...

    async def complete_requests(self, outcomes: Sequence[models.Outcome], *, now: float) -> int:
        """Records the outcomes of requests that have none yet; returns how many were recorded."""
        ...

    async def heartbeat(self, worker_id: str, keys: Sequence[int], *, now: float, lease: float) -> int:
        """Renews the leases of `keys` (ClaimedRequest.key) that `worker_id` still holds.

        Only the requests a worker really has in hand: a claim whose answer was lost (the
        connection dropped after COMMIT) must lapse and return to pending, not live forever.
        """
        ...

    async def recover_leases(self, *, now: float, everything: bool = False) -> int:
        """Returns lapsed (or, with everything, all) running requests to pending."""
        ...

    async def expire_due(self, *, now: float, grace: float) -> int: ...

    async def archive_due(self, *, now: float, retention: float) -> int: ...

    # -- dashboard side (added for issue 5) -----------------------------------------------

    async def list_results(
        self,
        workspace: str,
        batch_id: str,
        *,
        after_index: int | None = None,
        limit: int = 50,
        custom_id: str | None = None,
        result_type: models.ResultType | None = None,
    ) -> tuple[list[RequestEntry], bool]:
        """One page of a batch's requests in create order, each with its result line if it has one.

        after_index: only requests whose `index` (position in the create body) is greater.
        custom_id: only the request with exactly this custom_id.
        result_type: only requests that have a result of this type.
        Returns (page, has_more). Raises BatchNotFound (unknown id or another workspace's
        batch). An archived batch has no rows left and returns ([], False).
        """
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class RequestEntry:
    """One request of a batch as the dashboard lists it."""

    index: int  #: position in the create body
    custom_id: str
    state: models.RequestState
    result_type: models.ResultType | None  #: None until the request has its result
    line: bytes | None  #: the request's results JSONL line (newline included), once it has one
