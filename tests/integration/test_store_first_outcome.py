"""Both stores: two outcomes for one request in a single write keep the first, like two writes do."""

from __future__ import annotations

from batchd import models
from batchd.store import Store
from tests.integration.factories import NOW, WS, lines, make, ok


async def test_the_first_of_two_outcomes_in_one_write_wins(store: Store) -> None:
    batch = await make(store, 1)
    (claimed,) = await store.claim_requests("w", 10, now=NOW, lease=10)
    assert await store.complete_requests([ok(claimed, "first"), ok(claimed, "second")], now=NOW) == 1
    got = await store.get_batch(WS, batch.id)
    assert got.request_counts == models.RequestCounts(succeeded=1)
    (line,) = await lines(store, batch.id)
    assert line["result"]["tag"] == "first"
