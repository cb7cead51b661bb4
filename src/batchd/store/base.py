"""The Store protocol: intent-named domain operations every store implements.

Invariants the implementations enforce (see ARCHITECTURE.md):
- a request gets at most one result: the first `complete_requests` wins, later ones are ignored;
- the transaction that writes results also moves `request_counts` and ends the batch when
  nothing is pending or running, so counts always add up and `ended` means done;
- `create_batch` returns only after every request is durably committed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from batchd import models


class Store(Protocol):
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

    async def heartbeat(self, worker_id: str, *, now: float, lease: float) -> int: ...

    async def recover_leases(self, *, now: float, everything: bool = False) -> int:
        """Returns lapsed (or, with everything, all) running requests to pending."""
        ...

    async def expire_due(self, *, now: float, grace: float) -> int: ...

    async def archive_due(self, *, now: float, retention: float) -> int: ...
