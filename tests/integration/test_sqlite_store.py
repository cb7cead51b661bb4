"""SQLiteStore: create under a capped page cache, and reads inline on the event loop that never wait there."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import orjson
import pytest

from batchd.store.sqlite.store import CREATE_CACHE_KIB, SQLiteStore

NOW = 1_800_000_000.0


async def writer_cache_size(store: SQLiteStore) -> int:
    def read() -> int:
        assert store.db._writer is not None
        return int(store.db._writer.execute("PRAGMA cache_size").fetchone()[0])

    return await store.db.write(read)


async def test_create_larger_than_the_capped_cache_commits_and_restores_the_cache(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "create.db"))
    await store.open()
    try:
        before = await writer_cache_size(store)
        assert before != -CREATE_CACHE_KIB
        params = [orjson.dumps({"i": i, "pad": "x" * 1000}) for i in range(2 * CREATE_CACHE_KIB)]
        memory = [memoryview(p) for p in params]  # the API passes zero-copy slices of the body
        batch = await store.create_batch(
            workspace="ws",
            custom_ids=[f"c{i}" for i in range(len(params))],
            params=memory,
            now=NOW,
            expires_at=NOW + 100,
        )
        assert await writer_cache_size(store) == before
        claimed = await store.claim_requests("w", len(params), now=NOW, lease=60)
        assert [c.custom_id for c in claimed] == [f"c{i}" for i in range(len(params))]
        assert [bytes(c.params) for c in claimed] == params
        assert (await store.get_batch("ws", batch.id)).request_counts.processing == len(params)
    finally:
        await store.aclose()


async def test_a_failed_create_rolls_back_and_restores_the_cache(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "create.db"))
    await store.open()
    try:
        before = await writer_cache_size(store)
        with pytest.raises(ValueError):  # zip(strict=True): fewer params than custom_ids
            await store.create_batch(
                workspace="ws", custom_ids=["a", "b"], params=[b"{}"], now=NOW, expires_at=NOW + 100
            )
        assert await writer_cache_size(store) == before
        assert await store.list_batches("ws") == ([], False)
    finally:
        await store.aclose()


async def test_an_inline_read_that_meets_a_lock_moves_to_a_reader_thread(tmp_path: Path) -> None:
    """Retrieve and list read on the event loop's thread, but never wait there for a lock."""
    path = str(tmp_path / "inline.db")
    store = SQLiteStore(path)
    await store.open()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        batch = await store.create_batch(
            workspace="ws", custom_ids=["a"], params=[b"{}"], now=NOW, expires_at=NOW + 100
        )
        assert (await store.get_batch("ws", batch.id)).id == batch.id  # read inline
        loop_thread = threading.current_thread().name

        def take_write_lock(conn: sqlite3.Connection) -> str:
            # A real SQLITE_BUSY: another connection holds the write lock.
            conn.execute("PRAGMA query_only = OFF")
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
            finally:
                conn.execute("PRAGMA query_only = ON")
            return threading.current_thread().name

        other.execute("BEGIN IMMEDIATE")
        read = asyncio.ensure_future(store.db.read_inline(take_write_lock))
        await asyncio.sleep(0.2)
        assert not read.done()  # waiting on a reader thread; this loop ran the sleep meanwhile
        other.execute("ROLLBACK")
        assert await read != loop_thread
        assert (await store.get_batch("ws", batch.id)).id == batch.id
    finally:
        other.close()
        await store.aclose()
