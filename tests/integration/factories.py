"""What the store tests build and read: batches, outcomes, results lines (plain functions, so a test
can use them with any number of stores)."""

from __future__ import annotations

from typing import Any

import orjson

from batchd import models
from batchd.store import Store

WS = "ws"
NOW = 1_800_000_000.0


async def make(
    store: Store, n: int, *, workspace: str = WS, now: float = NOW, life: float = 100.0
) -> models.Batch:
    """A batch of `n` requests, custom_ids c0, c1, …"""
    return await store.create_batch(
        workspace=workspace,
        custom_ids=[f"c{i}" for i in range(n)],
        params=[orjson.dumps({"i": i}) for i in range(n)],
        now=now,
        expires_at=now + life,
    )


def ok(req: models.ClaimedRequest, tag: str = "x") -> models.Outcome:
    """A succeeded outcome for `req`, marked with `tag` (to tell two results apart)."""
    return models.Outcome(
        req.batch_id,
        req.index,
        req.custom_id,
        models.ResultType.SUCCEEDED,
        orjson.dumps({"type": "succeeded", "tag": tag}),
    )


async def lines(store: Store, batch_id: str, workspace: str = WS) -> list[dict[str, Any]]:
    """The batch's results, one parsed line each (JSON); checks that chunks hold whole lines."""
    out: list[dict[str, Any]] = []
    async for chunk in store.iter_results(workspace, batch_id):
        assert chunk.endswith(b"\n") and b"\n\n" not in chunk
        out.extend(orjson.loads(line) for line in chunk.splitlines())
    return out
