"""SQLiteStore's members for the OpenAI wire (issue 16): `OpenAIMethods`, which SQLiteStore
inherits. What they keep is described in store/openai.py."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

from batchd import models
from batchd.config.quotas import Quota
from batchd.store import layout, queries
from batchd.store.openai import INCOMPLETE_TTL, Closing, OpenAIBatch, OpenAIBatchRow, OpenAIFile
from batchd.store.sqlite.blobs import Blobs
from batchd.store.sqlite.db import Database

Q = queries.load("sqlite", "openai")
CHUNKS_PER_READ = 4  # chunks (1 MiB each) one read of a file's content takes
RESULTS_PER_READ = 1000  # results rows one read of a batch's results takes
FIRST_PAGE = 1 << 62  # above every seq


class _Creates(Protocol):
    def _create(
        self, *args: Any, then: Callable[[sqlite3.Connection], None] | None = None
    ) -> models.Batch: ...


class OpenAIMethods:
    """The OpenAI wire's members of the Store protocol, over SQLiteStore's `db` and `blobs` (the
    uploads' bytes, beside the database)."""

    db: Database
    blobs: Blobs

    async def begin_openai_file(self, file: OpenAIFile) -> None:
        await self.db.execute(Q["insert_file"], tuple(file))

    async def put_openai_chunks(self, file_id: str, first: int, chunks: Sequence[bytes]) -> None:
        await self.blobs.append(file_id, chunks, first=first == 0)  # beside the database: blobs.py

    async def complete_openai_file(self, file: OpenAIFile) -> None:
        await self.blobs.sync(file.id)  # the bytes on disk before the row says they are there

        # Durable: the answer tells the client its file exists.
        def write() -> None:
            with self.db.transaction(durable=True) as conn:
                conn.execute(
                    Q["complete_file"], (file.filename, file.purpose, file.bytes, file.expires_at, file.id)
                )

        await self.db.write(write)

    async def drop_openai_file(self, file_id: str) -> None:
        def write() -> None:
            with self.db.transaction() as conn:
                conn.execute(Q["delete_chunks"], (file_id,))
                conn.execute(Q["delete_file"], (file_id,))

        await self.db.write(write)
        await self.blobs.remove([file_id])

    async def get_openai_file(self, workspace: str, file_id: str, *, now: float) -> OpenAIFile | None:
        def read(conn: sqlite3.Connection) -> OpenAIFile | None:
            row = conn.execute(Q["fetch_file"], (file_id, workspace, now)).fetchone()
            return None if row is None else OpenAIFile._make(row)

        return await self.db.read_inline(read)

    async def list_openai_files(
        self,
        workspace: str,
        *,
        now: float,
        limit: int,
        after: OpenAIFile | None,
        ascending: bool,
        purpose: str | None,
    ) -> list[OpenAIFile]:
        if after is not None:
            mark: tuple[float, str] = (after.created_at, after.id)
        else:
            mark = (-math.inf, "") if ascending else (math.inf, "")
        name = "list_files_asc" if ascending else "list_files_desc"

        def read(conn: sqlite3.Connection) -> list[OpenAIFile]:
            rows = conn.execute(Q[name], (workspace, now, *mark, purpose, limit))
            return [OpenAIFile._make(row) for row in rows]

        return await self.db.read(read)

    async def iter_openai_chunks(self, file_id: str) -> AsyncIterator[bytes]:
        if self.blobs.exists(file_id):
            async for data in self.blobs.read(file_id):
                yield data
            return
        last = -1  # a file uploaded before blobs.py: its bytes are rows
        while True:
            rows = await self.db.read(_chunks, file_id, last)
            if not rows:
                return
            for n, data in rows:
                last = n
                yield bytes(data)

    async def delete_openai_file(self, workspace: str, file_id: str) -> bool:
        def write() -> tuple[bool, bool]:
            """(deleted, an upload whose bytes go too)"""
            with self.db.transaction(durable=True) as conn:
                if conn.execute(Q["delete_upload"], (file_id, workspace)).rowcount:
                    conn.execute(Q["delete_chunks"], (file_id,))
                    return True, True
                unlisted = any(
                    conn.execute(Q[name], (file_id, workspace)).rowcount
                    for name in ("unlist_output", "unlist_error")
                )
                return unlisted, False

        deleted, upload = await self.db.write(write)
        if upload:
            await self.blobs.remove([file_id])
        return deleted

    async def expire_openai_files(self, *, now: float) -> int:
        stored = self.blobs.stored()

        def write() -> tuple[list[str], list[str]]:
            """(the expired files, bytes stored without a row: a crash between a delete and the
            removal of its bytes)"""
            with self.db.transaction() as conn:
                ids = [row[0] for row in conn.execute(Q["expired_files"], (now, now - INCOMPLETE_TTL))]
                for file_id in ids:
                    conn.execute(Q["delete_chunks"], (file_id,))
                    conn.execute(Q["delete_file"], (file_id,))
                orphans = [f for f in stored if conn.execute(Q["file_exists"], (f,)).fetchone() is None]
                return ids, orphans

        ids, orphans = await self.db.write(write)
        await self.blobs.remove([*ids, *orphans])
        return len(ids)

    async def create_openai_batch(
        self,
        batch: OpenAIBatch,
        *,
        custom_ids: Sequence[str],
        params: Sequence[bytes],
        quota: Quota | None,
    ) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(Q["insert_batch"], tuple(batch))

        if batch.failed_at is not None:

            def write() -> None:
                with self.db.transaction(durable=True) as conn:
                    insert(conn)

            await self.db.write(write)
            return
        creates: _Creates = self  # type: ignore[assignment]  # SQLiteStore, which has _create
        await self.db.write(
            creates._create,
            batch.id,
            batch.workspace,
            custom_ids,
            params,
            batch.created_at,
            batch.expires_at,
            quota,
            None,
            then=insert,
        )

    async def get_openai_batch(self, workspace: str, batch_id: str) -> OpenAIBatchRow | None:
        return await self.db.read_inline(_one, "fetch_batch", (batch_id, workspace))

    async def find_openai_output(self, workspace: str, file_id: str) -> OpenAIBatchRow | None:
        return await self.db.read_inline(_one, "fetch_by_output", (workspace, file_id))

    async def list_openai_batches(
        self, workspace: str, *, after_id: str | None, limit: int
    ) -> tuple[list[OpenAIBatchRow], bool]:
        def read(conn: sqlite3.Connection) -> tuple[list[OpenAIBatchRow], bool]:
            below = FIRST_PAGE
            if after_id is not None:
                row = conn.execute(Q["batch_seq"], (after_id, workspace)).fetchone()
                if row is None:
                    return [], False
                below = row[0]
            rows = [
                OpenAIBatchRow._make(r)
                for r in conn.execute(Q["list_batches"], (workspace, below, limit + 1))
            ]
            return rows[:limit], len(rows) > limit

        return await self.db.read_inline(read)

    async def unclosed_openai_batches(self, workspace: str) -> list[OpenAIBatchRow]:
        def read(conn: sqlite3.Connection) -> list[OpenAIBatchRow]:
            return [OpenAIBatchRow._make(r) for r in conn.execute(Q["unclosed"], (workspace,))]

        return await self.db.read_inline(read)

    async def close_openai_batch(self, batch_id: str, closing: Closing) -> None:
        await self.db.execute(Q["close_batch"], (*closing, batch_id))

    async def iter_openai_results(self, engine_seq: int) -> AsyncIterator[list[tuple[int, str, bytes]]]:
        low, high = layout.key_range(engine_seq)
        last = low - 1
        while True:
            rows = await self.db.read(_results, last, high)
            if not rows:
                return
            last = rows[-1][0]
            yield [(key, kind, bytes(line)) for key, kind, line in rows]


def _one(conn: sqlite3.Connection, name: str, args: Sequence[object]) -> OpenAIBatchRow | None:
    row = conn.execute(Q[name], args).fetchone()
    return None if row is None else OpenAIBatchRow._make(row)


def _chunks(conn: sqlite3.Connection, file_id: str, last: int) -> list[tuple[int, bytes]]:
    return conn.execute(Q["chunks"], (file_id, last, CHUNKS_PER_READ)).fetchall()


def _results(conn: sqlite3.Connection, last: int, high: int) -> list[tuple[int, str, bytes]]:
    return conn.execute(Q["results"], (last, high, RESULTS_PER_READ)).fetchall()
