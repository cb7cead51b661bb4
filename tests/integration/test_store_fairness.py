"""Fair claims, on each store: open batches share every claim by workspace weight, key order within."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from batchd.store import Store, open_store
from batchd.store.postgres import PostgresStore
from tests.integration.factories import NOW, make, ok


async def test_a_small_batch_behind_a_backlog_is_claimed_at_once_in_key_order(store: Store) -> None:
    big = await make(store, 3000, workspace="a")
    first = await store.claim_requests("w", 100, now=NOW, lease=10)
    assert [r.index for r in first] == list(range(100))  # one batch: key order, as before
    small = await make(store, 10, workspace="b")
    claimed = await store.claim_requests("w", 100, now=NOW, lease=10)
    mine = [r.index for r in claimed if r.batch_id == small.id]
    assert mine == list(range(10))  # all of it in the next claim, in key order
    theirs = [r.index for r in claimed if r.batch_id == big.id]
    assert theirs == list(range(100, 190))  # the rest of the claim: the big batch goes on in order


async def test_batches_and_workspaces_share_claims_equally(store: Store) -> None:
    a1, a2 = await make(store, 2000, workspace="a"), await make(store, 2000, workspace="a")
    b = await make(store, 2000, workspace="b")
    taken: Counter[str] = Counter()
    for _ in range(10):
        claimed = await store.claim_requests("w", 64, now=NOW, lease=10)
        assert len(claimed) == 64
        taken.update(r.batch_id for r in claimed)
        await store.complete_requests([ok(r) for r in claimed], now=NOW)
    assert taken[b.id] == 320  # workspace b: half
    assert taken[a1.id] + taken[a2.id] == 320 and abs(taken[a1.id] - taken[a2.id]) <= 1


async def test_a_claim_is_full_while_any_batch_has_pending_work(store: Store) -> None:
    await make(store, 5, workspace="a")
    big = await make(store, 500, workspace="b")
    claimed = await store.claim_requests("w", 100, now=NOW, lease=10)
    assert len(claimed) == 100  # a's 5, then b's 95: what a could not use goes to b
    assert [r.index for r in claimed if r.batch_id == big.id] == list(range(95))


async def test_weights_set_the_shares(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}", weights={"a": 3})
    async with store:
        a, b = await make(store, 2000, workspace="a"), await make(store, 2000, workspace="b")
        taken: Counter[str] = Counter()
        for _ in range(10):
            taken.update(r.batch_id for r in await store.claim_requests("w", 40, now=NOW, lease=10))
        assert (taken[a.id], taken[b.id]) == (300, 100)


@pytest.mark.postgres
async def test_a_fleet_of_three_honours_one_share(fleet: Callable[..., Awaitable[PostgresStore]]) -> None:
    stores = [await fleet(weights={"a": 2}) for _ in range(3)]
    a, b = await make(stores[0], 3000, workspace="a"), await make(stores[0], 3000, workspace="b")
    taken: Counter[str] = Counter()

    async def work(s: PostgresStore, name: str) -> None:
        for _ in range(6):
            claimed = await s.claim_requests(name, 60, now=NOW, lease=10)
            taken.update(r.batch_id for r in claimed)
            await s.complete_requests([ok(r) for r in claimed], now=NOW)

    await asyncio.gather(*(work(s, f"w{i}") for i, s in enumerate(stores)))
    assert taken[a.id] + taken[b.id] == 3 * 6 * 60
    assert (taken[a.id], taken[b.id]) == (720, 360)  # 2:1, each process's claims split so
