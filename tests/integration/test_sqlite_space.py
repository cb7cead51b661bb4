"""SQLiteStore gives the space of a deleted or archived batch back to the file system at its next
archival sweep (incremental vacuum on a file made with auto_vacuum = INCREMENTAL); a file made
without it keeps its free pages and reuses them."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import orjson
import pytest

from batchd import models
from batchd.store.sqlite import space
from batchd.store.sqlite.store import SQLiteStore
from tests.integration.factories import NOW, WS

N = 2_000  # ~2 MB of params and results: several FREE_PAGES turns of the writer
PAD = "x" * 1000


def pages(path: Path) -> tuple[int, int]:
    """(page_count, freelist_count) of the file as committed, read on a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        (count,) = conn.execute("PRAGMA page_count").fetchone()
        (free,) = conn.execute("PRAGMA freelist_count").fetchone()
        return int(count), int(free)
    finally:
        conn.close()


async def ended_batch(store: SQLiteStore, created_at: float = NOW) -> models.Batch:
    """A batch of N requests of ~1 KB params, half with results, the rest canceled: ended."""
    batch = await store.create_batch(
        workspace=WS,
        custom_ids=[f"c{i}" for i in range(N)],
        params=[orjson.dumps({"i": i, "pad": PAD}) for i in range(N)],
        now=created_at,
        expires_at=created_at + 100,
    )
    claimed = await store.claim_requests("w", N // 2, now=created_at, lease=60)
    result = orjson.dumps({"type": "succeeded", "pad": PAD})
    outcomes = [
        models.Outcome(c.batch_id, c.index, c.custom_id, models.ResultType.SUCCEEDED, result) for c in claimed
    ]
    await store.complete_requests(outcomes, now=created_at)
    ended = await store.cancel_batch(WS, batch.id, created_at)
    assert ended.processing_status == models.ProcessingStatus.ENDED
    return batch


async def test_delete_gives_the_batch_space_back_to_the_file_system(tmp_path: Path) -> None:
    path = tmp_path / "space.db"
    async with SQLiteStore(str(path)) as store:
        empty, _ = pages(path)
        batch = await ended_batch(store)
        full, _ = pages(path)
        assert full > empty + 500  # the batch took ~3 MB
        await store.delete_batch(WS, batch.id)
        assert await store.list_batches(WS) == ([], False)
        assert pages(path)[1] > 500  # free, still in the file: the API call does not wait
        assert await store.archive_due(now=NOW + 1000, retention=1e9) == 0  # the next sweep
        after, free = pages(path)
        assert free == 0
        assert after < empty + 50


async def test_archival_gives_the_space_back_and_keeps_the_batch(tmp_path: Path) -> None:
    path = tmp_path / "space.db"
    async with SQLiteStore(str(path)) as store:
        empty, _ = pages(path)
        old = await ended_batch(store)
        young = await ended_batch(store, created_at=NOW + 150)
        with_both, _ = pages(path)
        assert await store.archive_due(now=NOW + 200, retention=100) == 1  # the older one only
        after, free = pages(path)
        assert free == 0
        assert after < with_both - (with_both - empty) // 3  # about half the two batches' pages went
        assert (await store.get_batch(WS, old.id)).archived_at == NOW + 200
        assert (await store.get_batch(WS, young.id)).archived_at is None


async def test_a_file_made_without_auto_vacuum_keeps_and_reuses_its_free_pages(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)  # as an older batchd made it: the default auto_vacuum = NONE
    old.execute("PRAGMA journal_mode = WAL")
    old.close()
    async with SQLiteStore(str(path)) as store:
        assert not store.db.shrinks
        batch = await ended_batch(store)
        full, _ = pages(path)
        await store.delete_batch(WS, batch.id)
        await store.archive_due(now=NOW + 1000, retention=1e9)  # a sweep: nothing it can give back
        after, free = pages(path)
        assert after == full and free > 500
        await ended_batch(store)  # the same size again: into the free pages
        again, _ = pages(path)
        assert again <= full + 50


def rows_in(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


async def test_a_delete_drops_rows_a_window_at_a_time_and_other_writes_go_between(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(space, "DROP_KEYS", 256)  # N requests: 8 windows
    path = tmp_path / "windows.db"
    async with SQLiteStore(str(path)) as store:
        doomed = await ended_batch(store)
        other = await store.create_batch(
            workspace=WS, custom_ids=["x"], params=[b"{}"], now=NOW, expires_at=NOW + 100
        )
        claimed_while_deleting: list[bool] = []

        async def claim_meanwhile() -> None:
            await asyncio.sleep(0)  # the delete's first window is queued on the writer first
            got = await store.claim_requests("w", 1, now=NOW, lease=60)
            assert [c.batch_id for c in got] == [other.id]
            # The writer took this claim between two windows: the batch is not gone yet.
            listed, _ = await store.list_batches(WS, limit=10)
            claimed_while_deleting.append(any(b.id == doomed.id for b in listed))

        await asyncio.gather(store.delete_batch(WS, doomed.id), claim_meanwhile())
        assert claimed_while_deleting == [True]
        assert [b.id for b in (await store.list_batches(WS))[0]] == [other.id]
        assert (rows_in(path, "requests"), rows_in(path, "request_params"), rows_in(path, "results")) == (
            1,
            1,
            0,
        )
