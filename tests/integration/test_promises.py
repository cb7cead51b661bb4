"""Store promises of the README that a small change to the source would break without these tests.

Each test names the promise it pins and the change it catches (issue 12, "claims no test would
catch"). Faults are injected by the database itself: a trigger that makes one write of the store's
transaction fail, as a full disk or a lost connection would, with no change to the store's code.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from batchd import exceptions, models
from batchd.store import Store, open_store
from tests.integration import pg
from tests.integration.factories import NOW, WS, lines, make, ok

# The two writes of `complete_requests`, each failed by a trigger: the results it inserts and the
# batch counters it moves (`move_counts`, the only statement that sets `n_processing` there).
FAULTS = {"results": ("INSERT", "results"), "counts": ("UPDATE OF n_processing", "batches")}


@dataclass
class FaultyStore:
    """An open store and a way to make one of its writes fail inside the database."""

    store: Store
    sqlite_path: Path | None = None  # set for SQLite
    pg_url: str | None = None  # set for PostgreSQL

    async def arm(self, fault: str) -> None:
        """From now on, the write named by `fault` (a key of FAULTS) raises inside the database."""
        event, table = FAULTS[fault]
        if self.sqlite_path is not None:
            self._sqlite(
                f"CREATE TRIGGER injected_fault BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'injected fault: {fault}'); END"
            )
        else:
            await self._postgres(
                "CREATE FUNCTION injected_fault() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN RAISE EXCEPTION 'injected fault: {fault}'; END $$",
                f"CREATE TRIGGER injected_fault BEFORE {event} ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION injected_fault()",
            )

    async def disarm(self) -> None:
        if self.sqlite_path is not None:
            self._sqlite("DROP TRIGGER injected_fault")
        else:
            await self._postgres("DROP FUNCTION injected_fault() CASCADE")

    async def results_written(self) -> int:
        """The number of result rows in the database (read directly, whatever the batch's status)."""
        if self.sqlite_path is not None:
            conn = sqlite3.connect(self.sqlite_path)
            try:
                return int(conn.execute("SELECT count(*) FROM results").fetchone()[0])
            finally:
                conn.close()
        pgconn = await asyncpg.connect(self.pg_url)
        try:
            return int(await pgconn.fetchval("SELECT count(*) FROM results"))
        finally:
            await pgconn.close()

    def _sqlite(self, statement: str) -> None:
        # A connection of the test's own: the store's writer sees the schema change on its next
        # statement (SQLite re-prepares statements whose schema changed).
        conn = sqlite3.connect(self.sqlite_path or "", isolation_level=None)
        try:
            conn.execute(statement)
        finally:
            conn.close()

    async def _postgres(self, *statements: str) -> None:
        conn = await asyncpg.connect(self.pg_url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def faulty(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FaultyStore]:
    if request.param == "sqlite":
        path = tmp_path / "promises.db"
        async with open_store(f"sqlite:///{path}") as store:
            yield FaultyStore(store, sqlite_path=path)
        return
    name, url = await pg.create_database()
    try:
        async with open_store(url) as store:
            yield FaultyStore(store, pg_url=url)
    finally:
        await pg.drop_database(name)


async def assert_counts_match_results(faulty: FaultyStore, batch: models.Batch) -> models.RequestCounts:
    """The batch's counters agree with the result rows the store holds, whatever its status."""
    counts = (await faulty.store.get_batch(WS, batch.id)).request_counts
    written = await faulty.results_written()
    finished = counts.succeeded + counts.errored + counts.canceled + counts.expired
    assert finished == written, f"the counters count {finished} results, the store holds {written}"
    assert counts.processing + finished == batch.request_counts.processing, counts
    return counts


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_counts_move_in_the_same_transaction_as_results(faulty: FaultyStore, fault: str) -> None:
    """README: "polling reads counters maintained in the same transactions as the results".

    Breaks if `move_counts` runs in a transaction of its own, before or after the results: the
    fault in one write must undo the other, so counts and results still agree once the write is
    retried (as the dispatcher does with results it could not write).
    """
    store = faulty.store
    batch = await make(store, 3)
    claimed = await store.claim_requests("w", 10, now=NOW, lease=100)
    await faulty.arm(fault)
    with pytest.raises(exceptions.StoreError, match="injected fault"):
        await store.complete_requests([ok(r) for r in claimed], now=NOW + 1)
    assert await assert_counts_match_results(faulty, batch) == models.RequestCounts(processing=3)

    await faulty.disarm()  # recovery: the same outcomes written again
    await store.complete_requests([ok(r) for r in claimed], now=NOW + 2)
    assert await assert_counts_match_results(faulty, batch) == models.RequestCounts(succeeded=3)
    got = await store.get_batch(WS, batch.id)
    assert got.processing_status is models.ProcessingStatus.ENDED and got.ended_at == NOW + 2
    assert len(await lines(store, batch.id)) == 3


async def test_requests_of_an_expired_batch_are_never_claimed(faulty: FaultyStore) -> None:
    """README: a batch expires at `expires_at`. Breaks if the claim query drops its `expires_at`
    condition: between the expiry and the next `expire_due` sweep, pending requests of the expired
    batch must not be claimed (their backend calls would be wasted, their results refused)."""
    store = faulty.store
    expired = await make(store, 3, life=10)
    live = await make(store, 2, life=1000)
    claimed = await store.claim_requests("w", 10, now=NOW + 10, lease=100)  # the very expiry instant
    assert {r.batch_id for r in claimed} == {live.id}, claimed
    assert [r.index for r in claimed] == [0, 1]
    assert await store.claim_requests("w", 10, now=NOW + 11, lease=100) == []
    still = await store.get_batch(WS, expired.id)  # not yet swept: pending, but never claimed
    assert still.request_counts == models.RequestCounts(processing=3)
    assert await store.expire_due(now=NOW + 11, grace=100) == 3
