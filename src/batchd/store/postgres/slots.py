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

from batchd.store import base, queries
from batchd.store.postgres import db as postgres_db
from batchd.store.postgres import driver, locks

logger = logging.getLogger("batchd.store")

CONNECT_TIMEOUT = 5.0  # seconds to open the slot connection
COMMAND_TIMEOUT = 10.0  # seconds one slot statement may take
SLOT_POLL = 0.05  # seconds between tries while every slot is taken; a local release wakes earlier
Q = queries.load("postgres")
_ERRORS = postgres_db.DRIVER_ERRORS


class Slots:
    """The fleet slots of one process (a base.FleetSlots): acquire() -> slot, release(slot)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: driver.Connection | None = None
        self._lock = asyncio.Lock()  # one statement at a time on the connection
        self._session = 0  # bumped whenever the connection (and every slot on it) is lost
        self._held: dict[int, set[int]] = {}  # route key -> slots this process holds
        self._gates: dict[int, asyncio.Lock] = {}  # route key -> the queue of local waiters
        self._freed: dict[int, asyncio.Event] = {}  # route key -> set when this process frees a slot
        self._closed = False
        self._background: set[asyncio.Task[base.Slot | None]] = set()  # statements outliving a caller

    async def acquire(self, name: str, limit: int, *, deadline: float) -> base.Slot:
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
                    slot = await self._try_shielded(name, key, limit)
                    if slot is not None:
                        return slot
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(SLOT_POLL * random.uniform(1.0, 2.0)):
                            await freed.wait()

    async def release(self, slot: base.Slot) -> None:
        """Gives a slot back; never raises (a lost connection has freed it already)."""
        await asyncio.shield(self._keep(self._release(slot)))  # finishes even if the caller is cancelled

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

    async def _try_shielded(self, name: str, key: int, limit: int) -> base.Slot | None:
        """One try, shielded: a caller cancelled mid-statement must not leave a slot taken."""
        task = self._keep(self._try(name, key, limit))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(self._release_orphan)
            raise

    def _release_orphan(self, task: asyncio.Task[base.Slot | None]) -> None:
        if not task.cancelled() and task.exception() is None and (slot := task.result()) is not None:
            self._keep(self._release(slot))

    def _keep(self, coro: Coroutine[object, object, base.Slot | None]) -> asyncio.Task[base.Slot | None]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _try(self, name: str, key: int, limit: int) -> base.Slot | None:
        async with self._lock:
            if self._closed:
                raise TimeoutError("the store is closed")
            connecting = self._conn is None or self._conn.is_closed()
            try:
                if connecting:
                    self._lost()
                    self._conn = None
                    self._conn = await driver.connect(
                        self.dsn, timeout=CONNECT_TIMEOUT, command_timeout=COMMAND_TIMEOUT
                    )
                conn = self._conn
                assert conn is not None
                held = self._held.setdefault(key, set())
                start = random.randrange(limit)
                candidates = [s for s in (*range(start, limit), *range(start)) if s not in held]
                if not candidates:
                    return None
                number: int | None = await conn.fetchval(Q["try_slot"], key, candidates)
            except Exception as exc:  # any failure leaves the locks on it unknown: start afresh
                log = logger.debug if connecting else logger.warning  # the database may be down a while
                log("fleet slot connection lost, reconnecting: %s", exc)
                self._drop()
                return None
            if number is None:
                return None
            held.add(number)
            return base.Slot(route=name, number=number, session=self._session)

    async def _release(self, slot: base.Slot) -> None:
        key = locks.route_key(slot.route)
        try:
            async with self._lock:
                if slot.session != self._session or self._conn is None:
                    return  # the connection that held it is gone, and the slot with it
                try:
                    await self._conn.fetchval(Q["unlock_slot"], key, slot.number)
                except Exception as exc:  # e.g. a connection the server has just terminated
                    logger.warning("fleet slot connection lost, reconnecting: %s", exc)
                    self._drop()
                    return
                self._held.get(key, set()).discard(slot.number)
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
        self._session += 1
        self._held.clear()
