"""PostgreSQL plumbing: a connection pool, migrations under an advisory lock, LISTEN, error translation.

Every driver error leaves this module as a StoreError: a constraint violation as StoreError, anything
else (server down, connection reset, deadlock, timeout) as StoreUnavailable, which the API renders
as a 503 and the engine retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

from batchd import exceptions
from batchd.store import base, queries
from batchd.store.postgres import driver, locks
from batchd.store.postgres.driver import Connection

logger = logging.getLogger("batchd.store")
T = TypeVar("T")
Q = queries.load("postgres")

WORK_CHANNEL = "batchd_work"  # NOTIFY channel: new or recovered work exists
CONNECT_TIMEOUT = 5.0  # seconds to open one connection
COMMAND_TIMEOUT = 30.0  # seconds one statement may take; a connection caught in a restart can hang
# The server ends a session left idle inside a transaction (a client wedged mid-claim would
# otherwise keep its rows locked, and SKIP LOCKED claims would pass them over forever).
SERVER_SETTINGS = {"idle_in_transaction_session_timeout": "20000"}  # milliseconds
POOL_MAX = 10  # connections per process
LISTEN_CHECK = 1.0  # seconds between checks that the LISTEN connection is alive
CLOSE_TIMEOUT = 10.0  # seconds to wait for borrowed connections at close


# What the driver raises when the server or the connection fails. InternalClientError is a
# connection left in a protocol state the driver cannot continue from (seen after a server restart:
# "cannot switch to state 15; another operation (2) is in progress"); it is not an InterfaceError.
BROKEN_CONNECTION = (driver.InterfaceError, driver.InternalClientError, driver.PostgresConnectionError)
DRIVER_ERRORS = (driver.PostgresError, *BROKEN_CONNECTION, OSError, TimeoutError)


def rowcount(status: str) -> int:
    """asyncpg returns the command tag ('UPDATE 12'); the count is its last word."""
    return int(status.rsplit(" ", 1)[-1])


@contextlib.contextmanager
def wrap_exceptions() -> Iterator[None]:
    try:
        yield
    except driver.IntegrityConstraintViolationError as exc:
        raise exceptions.StoreError(f"store integrity error: {exc}") from exc
    except DRIVER_ERRORS as exc:
        raise exceptions.StoreUnavailable(f"the database is unavailable: {exc}") from exc


def write_problem(exc: exceptions.StoreError) -> base.WriteProblem:
    """What a failed write says of the store, from the server's SQLSTATE (never its message)."""
    sqlstate = str(getattr(exc.__cause__, "sqlstate", ""))
    return _WRITE_PROBLEMS.get(sqlstate, base.WriteProblem.WRITE_FAILED)


_WRITE_PROBLEMS = {
    "53100": base.WriteProblem.DISK_FULL,  # disk_full: "could not extend file"
    "25006": base.WriteProblem.READ_ONLY,  # read_only_sql_transaction: a standby, or read-only by default
    "58030": base.WriteProblem.IO_ERROR,  # io_error
}


def _leaves_broken(exc: BaseException) -> bool:
    """Whether a connection may be mid-operation or dead after `exc` (raised or translated)."""
    unsafe = (*BROKEN_CONNECTION, OSError, TimeoutError, asyncio.CancelledError)
    return isinstance(exc, unsafe) or isinstance(exc.__cause__, unsafe)


def _is_broken(exc: BaseException) -> bool:
    """Whether `exc` says the connection itself is gone (not a timeout, not a server refusing)."""
    dead = (*BROKEN_CONNECTION, ConnectionResetError, BrokenPipeError, driver.AdminShutdownError)
    return isinstance(exc, dead) or isinstance(exc.__cause__, dead)


class Database:
    """A pool of connections to one PostgreSQL database, migrated on open."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._pool: driver.Pool | None = None
        self._listener: asyncio.Task[None] | None = None

    async def open(self) -> None:
        with wrap_exceptions():
            self._pool = await driver.create_pool(
                self.dsn,
                min_size=1,
                max_size=POOL_MAX,
                timeout=CONNECT_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT,
                server_settings=SERVER_SETTINGS,
            )
            async with self._pool.acquire() as conn:
                await migrate(conn)

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
            except DRIVER_ERRORS:
                pool.terminate()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        if self._pool is None:
            raise exceptions.StoreUnavailable("the store is closed")
        with wrap_exceptions():
            async with self._pool.acquire(timeout=CONNECT_TIMEOUT) as conn:
                try:
                    yield conn
                except BaseException as exc:
                    if _is_broken(exc):
                        # Probably a server restart: every idle connection is as dead as this one.
                        await self._pool.expire_connections()
                    if _leaves_broken(exc):
                        # Never hand a connection in an unknown state to the next caller: the
                        # pool replaces a terminated connection with a fresh one. (One the driver
                        # saw close is already detached from the pool.)
                        with contextlib.suppress(driver.InterfaceError):
                            conn.terminate()
                    raise

    async def read(self, fn: Callable[[Connection], Awaitable[T]]) -> T:
        """Runs a read-only `fn` on a connection, once more on a fresh one if the first was dead.

        After a server restart the pool's idle connections are closed at the other end, and only
        the first statement on each finds out: a read can safely run again instead of failing.
        """
        try:
            async with self.connection() as conn:
                return await fn(conn)
        except exceptions.StoreUnavailable as exc:
            if not _is_broken(exc):
                raise
        async with self.connection() as conn:
            return await fn(conn)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self.connection() as conn:
            with wrap_exceptions():
                async with conn.transaction():
                    yield conn

    async def listen(self, callback: Callable[[], None]) -> None:
        """Calls `callback` on every NOTIFY on the work channel, reconnecting as needed."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen_loop(callback), name="batchd store listener")

    async def _listen_loop(self, callback: Callable[[], None]) -> None:
        while True:
            conn: Connection | None = None
            try:
                conn = await driver.connect(self.dsn, timeout=CONNECT_TIMEOUT)
                await conn.add_listener(WORK_CHANNEL, lambda *_: callback())
                callback()  # work may have arrived while nobody listened
                while not conn.is_closed():
                    await asyncio.sleep(LISTEN_CHECK)
                    await conn.execute(Q["ping"], timeout=CONNECT_TIMEOUT)  # a silently dead link too
            except DRIVER_ERRORS as exc:
                logger.debug("LISTEN connection lost, reconnecting: %s", exc)
                await asyncio.sleep(LISTEN_CHECK)
            finally:
                if conn is not None and not conn.is_closed():
                    conn.terminate()


async def migrate(conn: Connection) -> int:
    """Applies every migration newer than the database's schema_version; returns the version.

    Several processes may start at once: a session advisory lock makes them take turns, so each
    migration runs exactly once.
    """
    await conn.execute(Q["migrate_lock"], locks.MIGRATE)
    try:
        await conn.execute(Q["create_schema_version"])
        current: int = await conn.fetchval(Q["schema_version"])
        for version, script in queries.migrations("postgres"):
            if version <= current:
                continue
            async with conn.transaction():
                await conn.execute(script)
                await conn.execute(Q["record_version"], version)
            current = version
        return current
    finally:
        await conn.execute(Q["migrate_unlock"], locks.MIGRATE)
