"""Fleet-wide concurrency slots per route: session advisory locks on one dedicated connection.

A route with `fleet_concurrency = N` has N slots, the advisory locks (route key, 0..N-1) in
PostgreSQL's two-integer lock space (batchd's own locks use the one-bigint space, so they never
meet). A call takes a free slot with `pg_try_advisory_lock` and gives it back with
`pg_advisory_unlock` once the backend has answered. The locks are session-level and live on one
connection per process, so the slots of a process that dies (`kill -9`, a lost machine) are free the
moment PostgreSQL sees its connection close: no lease to wait for.

Session advisory locks stack within a session, so this process keeps the set of slots it holds and
never tries one of them again. Uses of the connection are serialised (asyncpg connections are not
concurrent); within a process the waiters for a route queue in order and only the first one polls.
If the connection drops, the slots this process held are gone with it: calls in flight finish
holding nothing (their releases do nothing) and the next acquisition reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import asyncpg

from batchd.store import queries
from batchd.store.postgres import db as postgres_db
from batchd.store.postgres import locks

logger = logging.getLogger("batchd.store")

CONNECT_TIMEOUT = 5.0  # seconds to open the slot connection
COMMAND_TIMEOUT = 10.0  # seconds one slot statement may take
SLOT_POLL = 0.05  # seconds between tries while every slot is taken; a local release wakes earlier
T = TypeVar("T")
Q = queries.load("postgres")
_ERRORS = postgres_db.DRIVER_ERRORS


class Slots:
    """The fleet slots of one process: acquire() -> token, release(token)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()  # one statement at a time on the connection
        self._generation = 0  # bumped whenever the connection (and every slot on it) is lost
        self._held: dict[int, set[int]] = {}  # route key -> slots this process holds
        self._gates: dict[int, asyncio.Lock] = {}  # route key -> the queue of local waiters
        self._freed: dict[int, asyncio.Event] = {}  # route key -> set when this process frees a slot
        self._closed = False
        self._background: set[asyncio.Task[Any]] = set()  # shielded statements outliving a caller

    async def acquire(self, name: str, limit: int, *, deadline: float) -> tuple[int, int, int]:
        """Waits for a free slot of route `name` (of `limit`) until `deadline` (time.monotonic()).

        Raises TimeoutError when none came free in time.
        """
        key = locks.route_key(name)
        gate = self._gates.setdefault(key, asyncio.Lock())
        freed = self._freed.setdefault(key, asyncio.Event())
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            async with gate:
                while True:
                    freed.clear()
                    token = await self._try_shielded(key, limit)
                    if token is not None:
                        return token
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(SLOT_POLL * random.uniform(1.0, 2.0)):
                            await freed.wait()

    async def release(self, token: tuple[int, int, int]) -> None:
        """Gives a slot back; never raises (a lost connection has freed it already)."""
        await asyncio.shield(self._keep(self._release(token)))  # finishes even if the caller is cancelled

    async def aclose(self) -> None:
        self._closed = True
        async with self._lock:
            conn, self._conn = self._conn, None
            self._lost()
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), CONNECT_TIMEOUT)
            except _ERRORS:
                conn.terminate()

    # -- inside -------------------------------------------------------------------------------

    async def _try_shielded(self, key: int, limit: int) -> tuple[int, int, int] | None:
        """One try, shielded: a caller cancelled mid-statement must not leave a slot taken."""
        task = self._keep(self._try(key, limit))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(self._release_orphan)
            raise

    def _release_orphan(self, task: asyncio.Task[tuple[int, int, int] | None]) -> None:
        if not task.cancelled() and task.exception() is None and (token := task.result()) is not None:
            self._keep(self._release(token))

    def _keep(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _try(self, key: int, limit: int) -> tuple[int, int, int] | None:
        async with self._lock:
            if self._closed:
                raise TimeoutError("the store is closed")
            connecting = self._conn is None or self._conn.is_closed()
            try:
                if connecting:
                    self._lost()
                    self._conn = None
                    self._conn = await asyncpg.connect(
                        self.dsn, timeout=CONNECT_TIMEOUT, command_timeout=COMMAND_TIMEOUT
                    )
                conn = self._conn
                assert conn is not None
                held = self._held.setdefault(key, set())
                start = random.randrange(limit)
                candidates = [s for s in (*range(start, limit), *range(start)) if s not in held]
                if not candidates:
                    return None
                slot: int | None = await conn.fetchval(Q["try_slot"], key, candidates)
            except Exception as exc:  # any failure leaves the locks on it unknown: start afresh
                log = logger.debug if connecting else logger.warning  # the database may be down a while
                log("fleet slot connection lost, reconnecting: %s", exc)
                self._drop()
                return None
            if slot is None:
                return None
            held.add(slot)
            return (self._generation, key, slot)

    async def _release(self, token: tuple[int, int, int]) -> None:
        generation, key, slot = token
        try:
            async with self._lock:
                if generation != self._generation or self._conn is None:
                    return  # the connection that held it is gone, and the slot with it
                try:
                    await self._conn.fetchval(Q["unlock_slot"], key, slot)
                except Exception as exc:  # e.g. a connection the server has just terminated
                    logger.warning("fleet slot connection lost, reconnecting: %s", exc)
                    self._drop()
                    return
                self._held.get(key, set()).discard(slot)
        finally:
            if (freed := self._freed.get(key)) is not None:
                freed.set()

    def _drop(self) -> None:
        """The connection failed: close it (PostgreSQL frees its locks) and forget its slots."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()
        self._lost()

    def _lost(self) -> None:
        self._generation += 1
        self._held.clear()
