"""PostgreSQL only: what a fleet of processes sharing one database relies on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from batchd import exceptions, models
from batchd.store import open_store, queries
from batchd.store.postgres import PostgresStore
from batchd.store.postgres.db import migrate
from tests.integration import pg
from tests.integration.factories import NOW, WS, lines, make, ok

pytestmark = pytest.mark.postgres

Fleet = Callable[..., Awaitable[PostgresStore]]


async def test_concurrent_starts_migrate_once() -> None:
    name, url = await pg.create_database(migrated=False)
    try:
        stores = [open_store(url) for _ in range(6)]
        await asyncio.gather(*(s.open() for s in stores))
        await asyncio.gather(*(s.aclose() for s in stores))
        conn = await asyncpg.connect(url)
        try:
            versions = [r[0] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY 1")]
            assert versions == [v for v, _ in queries.migrations("postgres")]
            assert await migrate(conn) == versions[-1]  # idempotent
        finally:
            await conn.close()
    finally:
        await pg.drop_database(name)


async def test_max_running_holds_across_processes(fleet: Fleet) -> None:
    a, b = await fleet(max_running=10), await fleet(max_running=10)
    await make(a, 50)
    first = await a.claim_requests("a", 8, now=NOW, lease=10)
    second = await b.claim_requests("b", 8, now=NOW, lease=10)
    assert (len(first), len(second)) == (8, 2)
    assert await a.claim_requests("a", 8, now=NOW, lease=10) == []
    await a.complete_requests([ok(r) for r in first[:3]], now=NOW)
    assert len(await b.claim_requests("b", 8, now=NOW, lease=10)) == 3
    racing = await asyncio.gather(
        *(s.claim_requests(f"r{i}", 5, now=NOW, lease=10) for i, s in enumerate([a, b] * 4))
    )
    assert sum(map(len, racing)) == 0
    await a.complete_requests([ok(r) for r in first[3:]] + [ok(r) for r in second], now=NOW)
    racing = await asyncio.gather(
        *(s.claim_requests(f"r{i}", 5, now=NOW, lease=10) for i, s in enumerate([a, b] * 4))
    )
    assert sum(map(len, racing)) == 7  # 10 slots, 3 still running


async def test_new_work_is_announced_to_every_listener(fleet: Fleet) -> None:
    a, b = await fleet(), await fleet()
    woken = asyncio.Event()
    await a.listen(woken.set)
    await asyncio.wait_for(woken.wait(), 10)  # the first call comes once the listener is connected
    woken.clear()
    await make(b, 3)
    await asyncio.wait_for(woken.wait(), 10)
    woken.clear()
    await b.claim_requests("dead", 3, now=NOW, lease=1)
    assert await b.recover_leases(now=NOW + 5) == 3
    await asyncio.wait_for(woken.wait(), 10)


async def test_racing_transitions_never_double_count(fleet: Fleet) -> None:
    stores = [await fleet() for _ in range(4)]
    for _ in range(5):
        batch = await make(stores[0], 400, life=10)
        claimed = await stores[1].claim_requests("w", 200, now=NOW, lease=100)
        late = NOW + 20  # past expires_at and grace
        outcomes = await asyncio.gather(
            stores[0].complete_requests([ok(r) for r in claimed[:100]], now=late),
            stores[1].complete_requests([ok(r) for r in claimed[50:150]], now=late),
            stores[2].expire_due(now=late, grace=1),
            stores[3].expire_due(now=late, grace=1),
            stores[2].cancel_batch(WS, batch.id, late),
            stores[3].recover_leases(now=late),
            stores[0].heartbeat("w", [r.key for r in claimed], now=late, lease=100),
            return_exceptions=True,
        )
        # Only a cancel that lost the race to the end may fail: no deadlock, no other error.
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        assert all(isinstance(o, exceptions.InvalidBatchState) for o in failed), failed
        await stores[0].expire_due(now=late, grace=1)
        got = await stores[0].get_batch(WS, batch.id)
        assert got.processing_status is models.ProcessingStatus.ENDED
        assert got.request_counts.total == 400 and got.request_counts.processing == 0
        results = await lines(stores[0], batch.id)
        assert sorted(r["custom_id"] for r in results) == sorted(f"c{i}" for i in range(400))
        by_type: dict[str, int] = {}
        for r in results:
            kind = r["result"]["type"]
            by_type[kind] = by_type.get(kind, 0) + 1
        c = got.request_counts
        assert by_type == {
            k: v
            for k, v in {
                "succeeded": c.succeeded,
                "errored": c.errored,
                "canceled": c.canceled,
                "expired": c.expired,
            }.items()
            if v
        }


async def test_unreachable_database_is_store_unavailable() -> None:
    store = open_store("postgresql://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(exceptions.StoreUnavailable):
        await store.open()
    await store.aclose()


async def test_closed_store_is_store_unavailable(fleet: Fleet) -> None:
    store = await fleet()
    await store.aclose()
    with pytest.raises(exceptions.StoreUnavailable):
        await store.get_batch(WS, "msgbatch_x")


async def test_work_recovered_below_the_last_claim_is_claimed(fleet: Fleet) -> None:
    a, b = await fleet(), await fleet()
    await make(a, 12)
    dead = await b.claim_requests("dead", 4, now=NOW, lease=1)
    assert [r.index for r in await a.claim_requests("a", 4, now=NOW, lease=100)] == [4, 5, 6, 7]
    assert await b.recover_leases(now=NOW + 5) == 4  # keys below a's last claim are pending again
    again = await a.claim_requests("a", 10, now=NOW + 5, lease=100)
    assert sorted(r.index for r in again) == [0, 1, 2, 3, 8, 9, 10, 11]
    assert {r.claims for r in again if r.index < 4} == {1} and len(dead) == 4
