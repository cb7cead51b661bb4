"""Per-route fleet slots on PostgreSQL: two stores (two "processes") never hold more than the limit
together, and a store that goes away (a dead process) frees its slots at once."""

from __future__ import annotations

import asyncio
import random
import time

import asyncpg
import pytest

from batchd.store.postgres import PostgresStore
from batchd.store.postgres.locks import route_key

pytestmark = pytest.mark.postgres

ROUTE = "claude-*"
LIMIT = 3


async def held_locks(url: str, name: str = ROUTE) -> int:
    """Slots of `name` held in the database right now, whoever holds them."""
    conn = await asyncpg.connect(url)
    try:
        n: int = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted"
            " AND classid::bigint = ($1::bigint & 4294967295)"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            route_key(name),
        )
        return n
    finally:
        await conn.close()


async def test_two_stores_never_exceed_the_limit(pg_url: str) -> None:
    stores = [PostgresStore(pg_url), PostgresStore(pg_url)]
    for s in stores:
        await s.open()
    holding = peak = 0
    rng = random.Random(7)

    async def call(store: PostgresStore) -> None:
        nonlocal holding, peak
        token = await store.fleet_slots.acquire(ROUTE, LIMIT, deadline=time.monotonic() + 30)
        holding += 1
        peak = max(peak, holding)
        try:
            assert await held_locks(pg_url) <= LIMIT
            await asyncio.sleep(rng.uniform(0.0, 0.03))
        finally:
            holding -= 1
            await store.fleet_slots.release(token)

    try:
        await asyncio.gather(*(call(stores[i % 2]) for i in range(60)))
        assert peak == LIMIT  # the limit is reached, never passed
        assert await held_locks(pg_url) == 0  # every slot given back
    finally:
        for s in stores:
            await s.aclose()


async def test_other_routes_and_timeouts(pg_url: str) -> None:
    async with PostgresStore(pg_url) as a, PostgresStore(pg_url) as b:
        tokens = [await a.fleet_slots.acquire(ROUTE, 2, deadline=time.monotonic() + 5) for _ in range(2)]
        with pytest.raises(TimeoutError):
            await b.fleet_slots.acquire(ROUTE, 2, deadline=time.monotonic() + 0.3)
        other = await b.fleet_slots.acquire("other-route", 2, deadline=time.monotonic() + 1)  # its own slots
        waiter = asyncio.create_task(b.fleet_slots.acquire(ROUTE, 2, deadline=time.monotonic() + 5))
        await asyncio.sleep(0.2)
        assert not waiter.done()
        await a.fleet_slots.release(tokens[0])
        token = await asyncio.wait_for(waiter, 2)  # woken by another process's release (by polling)
        assert await held_locks(pg_url) == 2
        for t in (tokens[1],):
            await a.fleet_slots.release(t)
        await b.fleet_slots.release(token)
        await b.fleet_slots.release(other)
        assert await held_locks(pg_url) == 0


async def test_a_dead_process_frees_its_slots(pg_url: str) -> None:
    async with PostgresStore(pg_url) as survivor:
        dying = PostgresStore(pg_url)
        await dying.open()
        for _ in range(LIMIT):
            await dying.fleet_slots.acquire(ROUTE, LIMIT, deadline=time.monotonic() + 5)
        assert await held_locks(pg_url) == LIMIT
        with pytest.raises(TimeoutError):
            await survivor.fleet_slots.acquire(ROUTE, LIMIT, deadline=time.monotonic() + 0.3)
        # A process that dies never releases: its connection closing frees the slots.
        assert dying.fleet_slots._conn is not None
        dying.fleet_slots._conn.terminate()
        await dying.aclose()
        start = time.monotonic()
        tokens = [
            await survivor.fleet_slots.acquire(ROUTE, LIMIT, deadline=time.monotonic() + 5) for _ in range(3)
        ]
        assert time.monotonic() - start < 2
        assert await held_locks(pg_url) == LIMIT
        for t in tokens:
            await survivor.fleet_slots.release(t)


async def test_a_dropped_connection_is_replaced(pg_url: str) -> None:
    async with PostgresStore(pg_url) as store:
        stale = await store.fleet_slots.acquire(ROUTE, LIMIT, deadline=time.monotonic() + 5)
        admin = await asyncpg.connect(pg_url)
        try:
            assert store.fleet_slots._conn is not None
            pid = store.fleet_slots._conn.get_server_pid()
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        await store.fleet_slots.release(stale)  # its slot died with the connection: nothing to do, no error
        tokens = [
            await store.fleet_slots.acquire(ROUTE, LIMIT, deadline=time.monotonic() + 5) for _ in range(LIMIT)
        ]
        assert await held_locks(pg_url) == LIMIT
        for t in tokens:
            await store.fleet_slots.release(t)
        assert await held_locks(pg_url) == 0
