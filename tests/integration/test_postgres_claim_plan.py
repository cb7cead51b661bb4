"""PostgreSQL only: a claim walks each batch's pending index in key order and stops at its count,
whatever the planner's statistics say (after a VACUUM without ANALYZE it guessed a few pending rows
and read every batch's pending requests whole, then sorted them: cost growing with the batches)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from batchd.store import layout, open_store, queries
from tests.integration.factories import NOW, make

pytestmark = pytest.mark.postgres

Q = queries.load("postgres")
BATCHES = 10  # of SIZE requests, then one more: the smallest shape the bad plan was seen on
SIZE = 10_000


def nodes(plan: dict[str, Any]) -> list[str]:
    """Every node type of an EXPLAIN (FORMAT JSON) plan, depth first."""
    return [plan["Node Type"], *(n for child in plan.get("Plans", []) for n in nodes(child))]


async def test_a_claim_after_vacuum_walks_the_pending_index_in_key_order(pg_url: str) -> None:
    store = open_store(pg_url)
    await store.open()
    try:
        batches = [await make(store, SIZE, now=NOW + i) for i in range(BATCHES)]
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute("VACUUM")  # statistics as after autovacuum, no ANALYZE
            batches.append(await make(store, SIZE, now=NOW + BATCHES))  # and a batch created since
            seqs = sorted(r[0] for r in await conn.fetch("SELECT seq FROM batches"))
            lows = [layout.key_range(seq)[0] for seq in seqs]
            highs = [layout.key_range(seq)[1] for seq in seqs]
            async with conn.transaction():  # what PostgresStore.claim_requests runs, explained
                await conn.execute(Q["claim_plan"])
                explain = "EXPLAIN (FORMAT JSON) " + Q["claim"]
                found = await conn.fetchval(explain, NOW, "w", NOW + 60, lows, highs, [23] * len(seqs))
            kinds = nodes(json.loads(found)[0]["Plan"])
            assert "Index Scan" in kinds
            assert "Sort" not in kinds and "Bitmap Heap Scan" not in kinds, kinds
        finally:
            await conn.close()
        claimed = await store.claim_requests("w", 10 * len(batches), now=NOW + 10, lease=60)
        by_batch = {b.id: [c.index for c in claimed if c.batch_id == b.id] for b in batches}
        assert by_batch == {b.id: list(range(10)) for b in batches}  # fair shares, key order
    finally:
        await store.aclose()
