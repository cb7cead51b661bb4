"""SQLiteStore's code-execution containers and the Files API's files (issue 14): the Store members
of `FileMethods`, which SQLiteStore inherits."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import orjson

from batchd.store import base, queries
from batchd.store.sqlite.db import Database

Q = queries.load("sqlite")
R = TypeVar("R")


class FileMethods:
    """The containers' and files' members of the Store protocol, over SQLiteStore's `db`."""

    db: Database

    async def create_container(self, container: base.Container) -> None:
        await self.db.execute(Q["insert_container"], tuple(container))

    async def get_container(self, container_id: str) -> base.Container | None:
        return await self.db.read_inline(_one, base.Container._make, "fetch_container", (container_id,))

    async def touch_container(self, container_id: str, expires_at: float) -> None:
        await self.db.execute(Q["touch_container"], (container_id, expires_at))

    async def expire_containers(self, *, now: float) -> list[str]:
        return await self.db.write(self._returning_ids, Q["drop_expired_containers"], (now,))

    def _returning_ids(self, sql: str, args: tuple[object, ...]) -> list[str]:
        with self.db.transaction() as conn:
            return [row[0] for row in conn.execute(sql, args).fetchall()]

    async def live_containers(self, container_ids: Sequence[str], *, now: float) -> set[str]:
        def read(conn: sqlite3.Connection) -> set[str]:
            rows = conn.execute(Q["live_containers"], (orjson.dumps(list(container_ids)).decode(), now))
            return {str(row[0]) for row in rows}

        return await self.db.read(read)

    async def put_file(self, file: base.StoredFile, content: bytes) -> None:
        await self.db.execute(Q["insert_file"], (*file, content))

    async def get_file(self, workspace: str, file_id: str, *, now: float) -> base.StoredFile | None:
        return await self.db.read_inline(_one, _stored_file, "fetch_file", (file_id, workspace, now))

    async def file_content(self, workspace: str, file_id: str, *, now: float) -> bytes | None:
        def read(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(Q["file_content"], (file_id, workspace, now)).fetchone()
            return None if row is None else bytes(row[0])

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
            return await self.db.read_inline(
                _all,
                _stored_file,
                "list_files_before",
                (workspace, now, after.created_at, after.id, limit),
            )
        mark = (math.inf, "") if after is None else (after.created_at, after.id)
        return await self.db.read_inline(_all, _stored_file, "list_files", (workspace, now, *mark, limit))

    async def delete_file(self, workspace: str, file_id: str) -> bool:
        return await self.db.execute(Q["delete_file"], (file_id, workspace)) > 0

    async def expire_files(self, *, now: float) -> int:
        return await self.db.execute(Q["drop_expired_files"], (now,))


def _stored_file(row: Iterable[object]) -> base.StoredFile:
    """A files row: SQLite gives `downloadable` as 0 or 1."""
    *rest, downloadable = row
    return base.StoredFile._make((*rest, bool(downloadable)))


def _one(
    conn: sqlite3.Connection, row: Callable[[Iterable[object]], R], name: str, args: Sequence[object]
) -> R | None:
    found = conn.execute(Q[name], args).fetchone()
    return None if found is None else row(found)


def _all(
    conn: sqlite3.Connection, row: Callable[[Iterable[object]], R], name: str, args: Sequence[object]
) -> list[R]:
    return [row(r) for r in conn.execute(Q[name], args)]
