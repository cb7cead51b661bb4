"""PostgresStore's code-execution containers and the Files API's files (issue 14): the Store members
of `FileMethods`, which PostgresStore inherits."""

from __future__ import annotations

import math
from collections.abc import Sequence

from batchd.store import base, queries
from batchd.store.postgres.db import Database, rowcount
from batchd.store.postgres.driver import Connection

Q = queries.load("postgres")


class FileMethods:
    """The containers' and files' members of the Store protocol, over PostgresStore's `db`."""

    db: Database

    async def create_container(self, container: base.Container) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(Q["insert_container"], *container)

    async def get_container(self, container_id: str) -> base.Container | None:
        async def read(conn: Connection) -> base.Container | None:
            row = await conn.fetchrow(Q["fetch_container"], container_id)
            return None if row is None else base.Container._make(row)

        return await self.db.read(read)

    async def touch_container(self, container_id: str, expires_at: float) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(Q["touch_container"], container_id, expires_at)

    async def expire_containers(self, *, now: float) -> list[str]:
        async with self.db.transaction() as conn:
            return [row[0] for row in await conn.fetch(Q["drop_expired_containers"], now)]

    async def live_containers(self, container_ids: Sequence[str], *, now: float) -> set[str]:
        async def read(conn: Connection) -> set[str]:
            return {row[0] for row in await conn.fetch(Q["live_containers"], list(container_ids), now)}

        return await self.db.read(read)

    async def put_file(self, file: base.StoredFile, content: bytes) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(Q["insert_file"], *file, content)

    async def get_file(self, workspace: str, file_id: str, *, now: float) -> base.StoredFile | None:
        async def read(conn: Connection) -> base.StoredFile | None:
            row = await conn.fetchrow(Q["fetch_file"], file_id, workspace, now)
            return None if row is None else base.StoredFile._make(row)

        return await self.db.read(read)

    async def file_content(self, workspace: str, file_id: str, *, now: float) -> bytes | None:
        async def read(conn: Connection) -> bytes | None:
            value = await conn.fetchval(Q["file_content"], file_id, workspace, now)
            return None if value is None else bytes(value)

        return await self.db.read(read)

    async def list_files(
        self,
        workspace: str,
        *,
        now: float,
        limit: int,
        after: base.StoredFile | None,
        backwards: bool = False,
    ) -> list[base.StoredFile]:
        if backwards:
            assert after is not None
            name, mark = "list_files_before", (after.created_at, after.id)
        else:
            name, mark = "list_files", (math.inf, "") if after is None else (after.created_at, after.id)

        async def read(conn: Connection) -> list[base.StoredFile]:
            return [
                base.StoredFile._make(row) for row in await conn.fetch(Q[name], workspace, now, *mark, limit)
            ]

        return await self.db.read(read)

    async def delete_file(self, workspace: str, file_id: str) -> bool:
        async with self.db.transaction() as conn:
            return rowcount(await conn.execute(Q["delete_file"], file_id, workspace)) > 0

    async def expire_files(self, *, now: float) -> int:
        async with self.db.transaction() as conn:
            return rowcount(await conn.execute(Q["drop_expired_files"], now))
