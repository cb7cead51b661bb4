"""The scale scenario's stores (bench/scale.py): each on a fresh SQLite file or PostgreSQL database,
its size, what its maintenance does with freed space, and the requests it is filled with."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from batchd import models
from batchd.store.base import Store
from bench import postgres as pg
from bench.common import make_requests

WORKSPACE = "default"  # every caller's when no api_keys are set


def log(message: str) -> None:
    print(f"[scale] {message}", file=sys.stderr, flush=True)


class Backend:
    """Where one store lives: a fresh database, its URL for `batchd serve`, its size."""

    name = ""

    def url(self) -> str:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {"BATCHD_DATABASE_URL": self.url()}

    async def size(self, store: Store) -> int:
        raise NotImplementedError

    async def settle(self, store: Store) -> int:
        """What the database's own maintenance does with freed space before its size is read:
        PostgreSQL's VACUUM (as autovacuum would run it), SQLite's archival sweeps (each gives
        SWEEP_FREE_PAGES back) until no free page is left; the sweeps it took."""
        return 0


class SQLiteBackend(Backend):
    name = "SQLite"

    def __init__(self, workdir: Path, label: str) -> None:
        self.dir = workdir / f"sqlite-{label}"
        self.dir.mkdir(parents=True)
        self.path = self.dir / "batchd.db"

    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def env(self) -> dict[str, str]:
        return {}  # the server's data dir holds batchd.db

    async def size(self, store: Store) -> int:
        await store.aclose()  # closing checkpoints the WAL into the file
        total = self.path.stat().st_size
        await store.open()
        return total

    async def settle(self, store: Store) -> int:
        sweeps = 0
        while self._free_pages() and sweeps < 100_000:
            await store.archive_due(now=time.time(), retention=1e9)  # archives nothing: gives back
            sweeps += 1
        return sweeps

    def _free_pages(self) -> int:
        conn = sqlite3.connect(self.path)
        try:
            return int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        finally:
            conn.close()


class PostgresBackend(Backend):
    name = "PostgreSQL"

    def __init__(self, label: str) -> None:
        self.db = f"batchd_scale_{os.getpid()}_{label}"
        asyncio.run(pg._admin(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)"))
        asyncio.run(pg._admin(f"CREATE DATABASE {self.db}"))
        self.empty = 0

    def url(self) -> str:
        return pg.database_url(self.db)

    async def _one(self, sql: str) -> Any:
        import asyncpg

        conn = await asyncpg.connect(self.url(), timeout=10)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    async def size(self, store: Store) -> int:
        return int(await self._one("SELECT pg_database_size(current_database())")) - self.empty

    async def settle(self, store: Store) -> int:
        await self._one("VACUUM")
        return 1

    def drop(self) -> None:
        asyncio.run(pg._admin(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)"))


def params(n: int, prefix: str) -> tuple[list[str], list[bytes]]:
    reqs = make_requests(n)
    return [f"{prefix}-{r['custom_id']}" for r in reqs], [orjson.dumps(r["params"]) for r in reqs]


async def create(store: Store, n: int, prefix: str, created_at: float) -> models.Batch:
    ids, body = params(n, prefix)
    return await store.create_batch(
        workspace=WORKSPACE, custom_ids=ids, params=body, now=created_at, expires_at=created_at + 86_400
    )


async def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    await fn()
    return time.perf_counter() - t0


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"
