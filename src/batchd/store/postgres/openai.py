"""PostgresStore's members for the OpenAI wire (issue 16): `OpenAIMethods`, which PostgresStore
inherits. What they keep is described in store/openai.py."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from batchd import models
from batchd.config.quotas import Quota
from batchd.store import layout, queries
from batchd.store.openai import INCOMPLETE_TTL, Closing, OpenAIBatch, OpenAIBatchRow, OpenAIFile
from batchd.store.postgres.db import Database, rowcount
from batchd.store.postgres.driver import Connection

Q = queries.load("postgres", "openai")
CHUNKS_PER_READ = 4  # chunks (1 MiB each) one read of a file's content takes
RESULTS_PER_READ = 1000  # results rows one read of a batch's results takes
FIRST_PAGE = 1 << 62  # above every seq


class _Creates(Protocol):
    async def _create_batch(self, conn: Connection, *args: Any) -> models.Batch: ...


class OpenAIMethods:
    """The OpenAI wire's members of the Store protocol, over PostgresStore's `db`."""

    db: Database

    async def begin_openai_file(self, file: OpenAIFile) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(Q["insert_file"], *file)

    async def put_openai_chunks(self, file_id: str, first: int, chunks: Sequence[bytes]) -> None:
        async with self.db.transaction() as conn:
            await conn.copy_records_to_table(
                "openai_file_chunks",
                records=[(file_id, first + i, c) for i, c in enumerate(chunks)],
                columns=["file_id", "n", "data"],
            )

    async def complete_openai_file(self, file: OpenAIFile) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                Q["complete_file"], file.filename, file.purpose, file.bytes, file.expires_at, file.id
            )

    async def drop_openai_file(self, file_id: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(Q["delete_chunks"], file_id)
            await conn.execute(Q["delete_file"], file_id)

    async def get_openai_file(self, workspace: str, file_id: str, *, now: float) -> OpenAIFile | None:
        async def read(conn: Connection) -> OpenAIFile | None:
            row = await conn.fetchrow(Q["fetch_file"], file_id, workspace, now)
            return None if row is None else OpenAIFile._make(row)

        return await self.db.read(read)

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

        async def read(conn: Connection) -> list[OpenAIFile]:
            return [
                OpenAIFile._make(r) for r in await conn.fetch(Q[name], workspace, now, *mark, purpose, limit)
            ]

        return await self.db.read(read)

    async def iter_openai_chunks(self, file_id: str) -> AsyncIterator[bytes]:
        last = -1
        while True:

            async def read(conn: Connection, after: int = last) -> list[Any]:
                return list(await conn.fetch(Q["chunks"], file_id, after, CHUNKS_PER_READ))

            rows = await self.db.read(read)
            if not rows:
                return
            for n, data in rows:
                last = n
                yield bytes(data)

    async def delete_openai_file(self, workspace: str, file_id: str) -> bool:
        async with self.db.transaction() as conn:
            if rowcount(await conn.execute(Q["delete_upload"], file_id, workspace)):
                await conn.execute(Q["delete_chunks"], file_id)
                return True
            for name in ("unlist_output", "unlist_error"):
                if rowcount(await conn.execute(Q[name], file_id, workspace)):
                    return True
            return False

    async def expire_openai_files(self, *, now: float) -> int:
        async with self.db.transaction() as conn:
            ids = [row[0] for row in await conn.fetch(Q["expired_files"], now, now - INCOMPLETE_TTL)]
            for file_id in ids:
                await conn.execute(Q["delete_chunks"], file_id)
                await conn.execute(Q["delete_file"], file_id)
            return len(ids)

    async def create_openai_batch(
        self,
        batch: OpenAIBatch,
        *,
        custom_ids: Sequence[str],
        params: Sequence[bytes],
        quota: Quota | None,
    ) -> None:
        async with self.db.transaction() as conn:
            if batch.failed_at is None:
                creates: _Creates = self  # type: ignore[assignment]  # PostgresStore, which has _create_batch
                await creates._create_batch(
                    conn,
                    batch.id,
                    batch.workspace,
                    custom_ids,
                    params,
                    batch.created_at,
                    batch.expires_at,
                    quota,
                    None,
                )
            await conn.execute(Q["insert_batch"], *batch)

    async def get_openai_batch(self, workspace: str, batch_id: str) -> OpenAIBatchRow | None:
        return await self._one("fetch_batch", batch_id, workspace)

    async def find_openai_output(self, workspace: str, file_id: str) -> OpenAIBatchRow | None:
        return await self._one("fetch_by_output", workspace, file_id)

    async def _one(self, name: str, *args: object) -> OpenAIBatchRow | None:
        async def read(conn: Connection) -> OpenAIBatchRow | None:
            row = await conn.fetchrow(Q[name], *args)
            return None if row is None else OpenAIBatchRow._make(row)

        return await self.db.read(read)

    async def list_openai_batches(
        self, workspace: str, *, after_id: str | None, limit: int
    ) -> tuple[list[OpenAIBatchRow], bool]:
        async def read(conn: Connection) -> tuple[list[OpenAIBatchRow], bool]:
            below = FIRST_PAGE
            if after_id is not None:
                found = await conn.fetchval(Q["batch_seq"], after_id, workspace)
                if found is None:
                    return [], False
                below = found
            rows = [
                OpenAIBatchRow._make(r)
                for r in await conn.fetch(Q["list_batches"], workspace, below, limit + 1)
            ]
            return rows[:limit], len(rows) > limit

        return await self.db.read(read)

    async def unclosed_openai_batches(self, workspace: str) -> list[OpenAIBatchRow]:
        async def read(conn: Connection) -> list[OpenAIBatchRow]:
            return [OpenAIBatchRow._make(r) for r in await conn.fetch(Q["unclosed"], workspace)]

        return await self.db.read(read)

    async def close_openai_batch(self, batch_id: str, closing: Closing) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(Q["close_batch"], *closing, batch_id)

    async def iter_openai_results(self, engine_seq: int) -> AsyncIterator[list[tuple[int, str, bytes]]]:
        low, high = layout.key_range(engine_seq)
        last = low - 1
        while True:

            async def read(conn: Connection, after: int = last) -> list[Any]:
                return list(await conn.fetch(Q["results"], after, high, RESULTS_PER_READ))

            rows = await self.db.read(read)
            if not rows:
                return
            last = rows[-1][0]
            yield [(key, kind, bytes(line)) for key, kind, line in rows]
