"""PostgreSQL only: a connection that failed mid-use never goes back into service."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator

import asyncpg
import pytest

from batchd import exceptions
from batchd.store.postgres.db import Database
from tests.integration import pg

pytestmark = pytest.mark.postgres


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[Database]:
    database = Database(pg_url)
    await database.open()
    yield database
    await database.aclose()


async def backend_pid(db: Database) -> int:
    async with db.connection() as conn:
        pid: int = await conn.fetchval("SELECT pg_backend_pid()")
        return pid


@pytest.mark.parametrize(
    "error",
    [
        # What asyncpg raised after a server restart; not an InterfaceError, so it once escaped.
        asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
        asyncpg.InterfaceError("cannot call Transaction.__aexit__(): the underlying connection is closed"),
        ConnectionResetError("connection reset by peer"),
    ],
    ids=["internal-client-error", "interface-error", "os-error"],
)
async def test_a_broken_connection_is_replaced_and_the_error_is_store_unavailable(
    db: Database, error: Exception
) -> None:
    async with db.connection() as conn:
        first = await conn.fetchval("SELECT pg_backend_pid()")
    assert await backend_pid(db) == first  # the pool (min size 1) hands the same connection out again

    with pytest.raises(exceptions.StoreUnavailable, match="unavailable"):
        async with db.transaction() as conn:
            await conn.execute("SELECT 1")
            raise error
    assert await backend_pid(db) != first  # a fresh connection, not the one in an unknown state


async def test_a_cancelled_statement_does_not_poison_the_pool(db: Database) -> None:
    task = asyncio.create_task(_sleep_in_db(db))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(20):  # every connection the pool hands out afterwards works
        async with db.transaction() as conn:
            assert await conn.fetchval("SELECT 41 + 1") == 42


async def test_a_constraint_violation_keeps_the_connection(db: Database) -> None:
    async with db.connection() as conn:
        await conn.execute("CREATE TEMP TABLE t (k int PRIMARY KEY)")
        first = await conn.fetchval("SELECT pg_backend_pid()")
    with pytest.raises(exceptions.StoreError, match="integrity"):
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO t VALUES (1), (1)")
    assert await backend_pid(db) == first


async def _sleep_in_db(db: Database) -> None:
    async with db.connection() as conn:
        await conn.execute("SELECT pg_sleep(5)")


class Proxy:
    """A loopback TCP relay to PostgreSQL whose connections can die silently, as when a server host
    vanishes: they stay open on the client's side and fail only when next used."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.live: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter, list[bool]]] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        dead = [False]
        self.live.append((writer, up_writer, dead))
        await asyncio.gather(
            self._pump(reader, up_writer, writer, dead), self._pump(up_reader, writer, writer, dead)
        )

    @staticmethod
    async def _pump(
        src: asyncio.StreamReader, dst: asyncio.StreamWriter, client: asyncio.StreamWriter, dead: list[bool]
    ) -> None:
        try:
            while data := await src.read(65536):
                if dead[0]:  # the client's first bytes after the death end its connection
                    client.transport.abort()
                    return
                dst.write(data)
        except ConnectionError:
            return
        if not dead[0]:
            dst.close()

    def kill_silently(self) -> None:
        for _, up, dead in self.live:
            dead[0] = True
            up.transport.abort()
        self.live.clear()


async def test_reads_survive_connections_that_died_silently() -> None:
    name, url = await pg.create_database()
    parts = urllib.parse.urlsplit(url)
    proxy = Proxy(parts.port or 5432)
    via = parts._replace(netloc=f"{parts.username}@127.0.0.1:{await proxy.start()}").geturl()
    db = Database(via)
    await db.open()
    try:
        async with db.connection() as a, db.connection() as b:
            pids = [await c.fetchval("SELECT pg_backend_pid()") for c in (a, b)]
        proxy.kill_silently()
        await asyncio.sleep(0.1)
        tries: list[int] = []

        async def read(conn: asyncpg.Connection) -> int:
            tries.append(1)
            value: int = await conn.fetchval("SELECT pg_backend_pid()")
            return value

        assert await db.read(read) not in pids
        assert len(tries) == 2  # the dead connection failed on first use and the read ran again
        assert await backend_pid(db) not in pids  # the other dead one was expired with it
    finally:
        await db.aclose()
        proxy.server.close()
        await pg.drop_database(name)
