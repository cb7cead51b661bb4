"""`Store.probe_write`, /health's write check, on each store: None while writes go through, and
what stops them in the words /health may show. (A real full disk, for both stores, is in
tests/acceptance/test_information.py.)"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from batchd import exceptions
from batchd.store import Store
from batchd.store.base import WriteProblem
from batchd.store.postgres import db as postgres_db
from batchd.store.sqlite import SQLiteStore
from batchd.store.sqlite import db as sqlite_db
from tests.integration.factories import NOW, WS, make


async def test_a_writable_store_passes_and_keeps_nothing_of_the_probe(store: Store) -> None:
    batch = await make(store, 2)
    assert await store.probe_write(now=NOW) is None
    # Probes of a fleet's processes (or of two health checks) at once do not trip on each other.
    assert await asyncio.gather(*(store.probe_write(now=NOW + i) for i in range(5))) == [None] * 5
    assert await store.get_batch(WS, batch.id) == batch
    assert await store.list_batches(WS) == ([batch], False)


async def test_postgres_rolls_the_probe_back(pg_url: str) -> None:
    from batchd.store import open_store

    store = open_store(pg_url)
    await store.open()
    try:
        assert await store.probe_write(now=NOW) is None
    finally:
        await store.aclose()
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM write_probe") == 0
    finally:
        await conn.close()


async def test_sqlite_says_read_only_when_it_cannot_write(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "batchd.db"))
    async with store:

        def read_only() -> None:
            assert store.db._writer is not None
            store.db._writer.execute("PRAGMA query_only = ON")  # SQLite refuses every write from here

        await store.db.write(read_only)
        assert await store.probe_write(now=NOW) is WriteProblem.READ_ONLY
        with pytest.raises(exceptions.StoreUnavailable):  # as a create would find
            await make(store, 1)


def _failed(cause: BaseException) -> exceptions.StoreError:
    """A write's failure as the store's error translation leaves it."""
    error = exceptions.StoreUnavailable("the database failed")
    error.__cause__ = cause
    return error


def _sqlite_error(code: int) -> sqlite3.Error:
    error = sqlite3.OperationalError("from SQLite")
    error.sqlite_errorcode = code  # type: ignore[attr-defined]  # as SQLite's C code sets it
    return error


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        (sqlite3.SQLITE_FULL, WriteProblem.DISK_FULL),
        (sqlite3.SQLITE_READONLY, WriteProblem.READ_ONLY),
        (sqlite3.SQLITE_IOERR, WriteProblem.IO_ERROR),
        (sqlite3.SQLITE_IOERR | (4 << 8), WriteProblem.IO_ERROR),  # SQLITE_IOERR_WRITE, extended
        (sqlite3.SQLITE_CORRUPT, WriteProblem.WRITE_FAILED),
    ],
)
def test_sqlite_problems_come_from_the_error_code(code: int, problem: WriteProblem) -> None:
    assert sqlite_db.write_problem(_failed(_sqlite_error(code))) is problem


@pytest.mark.parametrize(
    ("cause", "problem"),
    [
        (
            asyncpg.DiskFullError('could not extend file "base/1/2": No space left on device'),
            WriteProblem.DISK_FULL,
        ),
        (
            asyncpg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
            WriteProblem.READ_ONLY,
        ),
        (asyncpg.PostgresIOError("could not write block 7"), WriteProblem.IO_ERROR),
        (asyncpg.DeadlockDetectedError("deadlock detected"), WriteProblem.WRITE_FAILED),
        (ConnectionResetError(), WriteProblem.WRITE_FAILED),
    ],
)
def test_postgres_problems_come_from_the_sqlstate(cause: BaseException, problem: WriteProblem) -> None:
    assert postgres_db.write_problem(_failed(cause)) is problem
