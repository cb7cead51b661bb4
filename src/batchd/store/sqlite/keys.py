"""SQLiteStore's managed API keys and the workspaces' usage (issue 17): the Store members of
`KeyMethods`, which SQLiteStore inherits."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from batchd.store import base, queries
from batchd.store.sqlite.db import Database

Q = queries.load("sqlite")


class KeyMethods:
    """The API keys' and usage members of the Store protocol, over SQLiteStore's `db`."""

    db: Database

    async def create_api_key(self, key: base.ApiKey) -> None:
        await self.db.write(self._insert_api_key, key)

    def _insert_api_key(self, key: base.ApiKey) -> None:
        with self.db.transaction(durable=True) as conn:
            conn.execute(Q["insert_api_key"], key)

    async def find_api_key(self, digest: str) -> base.ApiKey | None:
        return await self.db.read_inline(_fetch_api_key, "find_api_key", digest)

    async def list_api_keys(self, workspace: str | None = None) -> list[base.ApiKey]:
        return await self.db.read(_api_key_rows, workspace)

    async def revoke_api_key(self, key_id: str, now: float) -> base.ApiKey | None:
        return await self.db.write(self._revoke_api_key, key_id, now)

    def _revoke_api_key(self, key_id: str, now: float) -> base.ApiKey | None:
        # Durable: a revocation acknowledged must hold after a power cut.
        with self.db.transaction(durable=True) as conn:
            conn.execute(Q["revoke_api_key"], (key_id, now))
            return _fetch_api_key(conn, "fetch_api_key", key_id)

    async def touch_api_key(self, key_id: str, now: float, *, every: float) -> None:
        await self.db.execute(Q["touch_api_key"], (key_id, now, every))

    async def usage(self, workspace: str | None = None) -> list[base.Usage]:
        if workspace is None:
            return await self.db.read(usage_rows, "all_usage", ())
        return await self.db.read(usage_rows, "workspace_usage", (workspace,))


def usage_rows(conn: sqlite3.Connection, query: str, args: tuple[str, ...]) -> list[base.Usage]:
    """The rows of a usage query (the quota check in create reads them too)."""
    return [base.Usage._make(row) for row in conn.execute(Q[query], args)]


def _fetch_api_key(conn: sqlite3.Connection, query: str, value: str) -> base.ApiKey | None:
    row = conn.execute(Q[query], (value,)).fetchone()
    return None if row is None else _api_key(row)


def _api_key(row: Sequence[object]) -> base.ApiKey:
    key = base.ApiKey._make(row)
    return key._replace(admin=bool(key.admin))


def _api_key_rows(conn: sqlite3.Connection, workspace: str | None) -> list[base.ApiKey]:
    return [_api_key(row) for row in conn.execute(Q["list_api_keys"], (workspace,))]
