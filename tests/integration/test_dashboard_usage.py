"""The dashboard's usage sums (dashboard/usage.py) on a real store: right whatever order results
arrive in, and incremental: a refresh reads only past the settled prefix, an ended batch nothing."""

from __future__ import annotations

import random

import orjson

from batchd import models
from batchd.dashboard import usage
from batchd.store import Store
from tests.integration.factories import NOW, WS, make


def succeeded(req: models.ClaimedRequest, model: str) -> models.Outcome:
    n = req.index
    message = {
        "model": model,
        "usage": {
            "input_tokens": 10 + n,
            "output_tokens": 2 * n,
            "cache_read_input_tokens": n % 3,
            "cache_creation_input_tokens": 1,
            "server_tool_use": {"web_search_requests": n % 2, "web_fetch_requests": 1},
        },
    }
    result = orjson.dumps({"type": "succeeded", "message": message})
    return models.Outcome(req.batch_id, req.index, req.custom_id, models.ResultType.SUCCEEDED, result)


def expected(indexes: list[int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for n in indexes:
        sums = out.setdefault("even" if n % 2 == 0 else "odd", usage.empty())
        sums["input_tokens"] += 10 + n
        sums["output_tokens"] += 2 * n
        sums["cache_read_input_tokens"] += n % 3
        sums["cache_creation_input_tokens"] += 1
        sums["server_tool_calls"] += n % 2 + 1
    return out


async def test_sums_are_right_in_any_order_and_read_incrementally(store: Store) -> None:
    n = 2500
    batch = await make(store, n)
    claimed = await store.claim_requests("w", n, now=NOW, lease=100)
    rng = random.Random(7)
    for _ in range(10):  # some requests settle long after their neighbours, as retries do
        i = rng.randrange(n - 700)
        claimed[i], claimed[i + 600] = claimed[i + 600], claimed[i]
    cache = usage.UsageCache(page=100)
    done: list[int] = []
    for step in range(0, n, 500):
        chunk = claimed[step : step + 500]
        outcomes = [succeeded(r, "even" if r.index % 2 == 0 else "odd") for r in chunk]
        await store.complete_requests(outcomes, now=NOW)
        done += [r.index for r in chunk]
        fresh = await store.get_batch(WS, batch.id)
        assert (await cache.usage(store, WS, fresh)).by_model == expected(done)
    # Each step read the blocks settled since, and those a late request keeps open: far less
    # than reading every result at every step (500 + 1000 + … + 2500 = 7,500 lines).
    assert cache.lines_read < 4000, cache.lines_read
    ended = await store.get_batch(WS, batch.id)
    assert ended.processing_status is models.ProcessingStatus.ENDED
    read = cache.lines_read
    again = await cache.usage(store, WS, ended)
    assert again.by_model == expected(list(range(n))) and again.requests == n
    assert (await cache.usage(store, WS, ended)).by_model == expected(list(range(n)))
    assert cache.lines_read == read  # ended and summed: nothing read again


async def test_a_budget_sums_a_large_batch_over_several_calls(store: Store) -> None:
    n = 950
    batch = await make(store, n)
    claimed = await store.claim_requests("w", n, now=NOW, lease=100)
    await store.complete_requests(
        [succeeded(r, "even" if r.index % 2 == 0 else "odd") for r in claimed], now=NOW
    )
    ended = await store.get_batch(WS, batch.id)
    cache = usage.UsageCache(page=100)
    calls = 0
    while True:
        calls += 1
        found = await cache.usage(store, WS, ended, usage.Budget(4))
        if found.summed:
            break
        assert found.requests == 400 * calls  # four blocks more each call
    assert calls == 3 and found.by_model == expected(list(range(n)))
    assert cache.lines_read == n  # no block read twice


async def test_a_block_being_worked_on_is_read_from_its_settled_prefix(store: Store) -> None:
    n = 1000
    batch = await make(store, n)
    claimed = await store.claim_requests("w", n, now=NOW, lease=100)
    late = claimed.pop(450)  # settles last: the prefix stops before it, what follows is re-read
    cache = usage.UsageCache(page=n)  # one block, as a running batch's block is
    done: list[int] = []
    for step in range(0, len(claimed), 100):
        chunk = claimed[step : step + 100]
        await store.complete_requests(
            [succeeded(r, "even" if r.index % 2 == 0 else "odd") for r in chunk], now=NOW
        )
        done += [r.index for r in chunk]
        fresh = await store.get_batch(WS, batch.id)
        assert (await cache.usage(store, WS, fresh)).by_model == expected(done)
    # Up to the late request each refresh read only the 100 new results; past it, what follows
    # (up to 549 results) is read on each of the last five refreshes: far less than re-reading
    # the block each time (100 + 200 + … ≈ 50,000 lines).
    assert cache.lines_read <= 450 + 5 * 549, cache.lines_read
    await store.complete_requests([succeeded(late, "odd" if late.index % 2 else "even")], now=NOW)
    ended = await store.get_batch(WS, batch.id)
    assert (await cache.usage(store, WS, ended)).by_model == expected(list(range(n)))


async def test_a_budget_past_its_deadline_still_reads_one_block_per_call(store: Store) -> None:
    n = 350
    batch = await make(store, n)
    claimed = await store.claim_requests("w", n, now=NOW, lease=100)
    await store.complete_requests(
        [succeeded(r, "even" if r.index % 2 == 0 else "odd") for r in claimed], now=NOW
    )
    ended = await store.get_batch(WS, batch.id)
    cache = usage.UsageCache(page=100)
    sums = [await cache.usage(store, WS, ended, usage.Budget(40, deadline=0.0)) for _ in range(4)]
    assert [s.requests for s in sums] == [100, 200, 300, 350]
    assert [s.summed for s in sums] == [False, False, False, True]
    assert sums[-1].by_model == expected(list(range(n)))


async def test_a_running_block_is_read_up_to_its_last_result_not_whole(store: Store) -> None:
    n = 1000
    batch = await make(store, n)
    claimed = await store.claim_requests("w", n, now=NOW, lease=100)
    cache = usage.UsageCache(page=n)  # one block of 1,000, read 100 requests per store call
    done: list[int] = []
    for step in range(0, 500, 50):  # half the batch, 50 results between two views
        chunk = claimed[step : step + 50]
        await store.complete_requests(
            [succeeded(r, "even" if r.index % 2 == 0 else "odd") for r in chunk], now=NOW
        )
        done += [r.index for r in chunk]
        fresh = await store.get_batch(WS, batch.id)
        assert (await cache.usage(store, WS, fresh)).by_model == expected(done)
    # Each view read from the settled prefix to the 50 new results (one or two calls of 100),
    # not the 500-950 pending requests after them.
    assert cache.entries_read <= 10 * 200, cache.entries_read
    assert cache.lines_read == 500
