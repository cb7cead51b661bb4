"""A fleet worker's liveness lock: a session advisory lock on one dedicated connection.

While a worker lives, its own database session holds the lock of its identity
(`locks.worker_key`); the sweeps of every process (`PostgresStore.recover_leases`) return the
running requests of an identity whose lock they have found free for `takeover_after`. A process
killed with `kill -9` frees its lock at once (PostgreSQL ends the session when the connection
closes), so its work is taken over in seconds instead of when its leases lapse.

Each `take` is a new identity, `worker_id/epoch`: an identity whose lock was lost is never held
again, so a lock found free stays free and any sweep may count from its first sighting. A worker
that took a new identity moves the requests it still holds to it with its next heartbeat (the
heartbeat query takes over the rows of the worker's earlier identities).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from batchd.store import queries
from batchd.store.postgres import db as postgres_db
from batchd.store.postgres import driver, locks

logger = logging.getLogger("batchd.store")

CONNECT_TIMEOUT = 2.0  # seconds to open the lock's connection
PING_TIMEOUT = 2.0  # seconds a confirmation may take before the session counts as lost
Q = queries.load("postgres")


def identity(worker_id: str, epoch: int) -> str:
    """The identity of `worker_id`'s `epoch`-th lock: what its claims and heartbeats carry."""
    return f"{worker_id}/{epoch}"


def worker_of(identity: str) -> str:
    """The worker an identity belongs to (an identity without an epoch is its own worker)."""
    return identity.split("/", 1)[0]


class WorkerLock:
    """The liveness lock of one process (a base.WorkerLock): take() -> identity, confirm(), release()."""

    def __init__(self, dsn: str, database: postgres_db.Database) -> None:
        self.dsn = dsn
        self.db = database
        self._conn: driver.Connection | None = None
        self._epoch = 0
        self._lock = asyncio.Lock()  # one statement at a time on the connection
        self._closed = False

    async def take(self, worker_id: str) -> str | None:
        async with self._lock:
            if self._closed:
                return None
            self._drop()  # the previous identity's lock goes with its session
            self._epoch += 1  # never the same identity twice, even after a take that failed
            name = identity(worker_id, self._epoch)
            conn: driver.Connection | None = None
            try:
                conn = await driver.connect(self.dsn, timeout=CONNECT_TIMEOUT, command_timeout=PING_TIMEOUT)
                got = await conn.fetchval(Q["try_worker_lock"], locks.worker_key(name))
            except Exception as exc:  # the database is unreachable: the caller tries again
                logger.debug("worker lock not taken: %s", exc)
                if conn is not None:
                    conn.terminate()
                return None
            if not got:  # only a key collision can hold it: the next epoch has another key
                conn.terminate()
                return None
            self._conn = conn
            return name

    async def confirm(self) -> bool:
        async with self._lock:
            conn = self._conn
            if conn is None or conn.is_closed():
                return False
            try:
                await conn.execute(Q["ping"], timeout=PING_TIMEOUT)
            except Exception as exc:  # lost, or too slow to count on: the session is given up
                logger.debug("worker lock connection lost: %s", exc)
                self._drop()
                return False
            return True

    async def release(self, identity: str, requests: Mapping[int, int]) -> int:
        if not requests:
            return 0
        keys, claims, mine = list(requests), list(requests.values()), worker_of(identity) + "/"
        async with self.db.transaction() as conn:
            status = await conn.execute(Q["release_requests"], keys, claims, identity, mine)
        return postgres_db.rowcount(status)

    async def aclose(self) -> None:
        self._closed = True
        async with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), CONNECT_TIMEOUT)
            except postgres_db.DRIVER_ERRORS:
                conn.terminate()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()  # PostgreSQL ends the session, and frees its lock, when it sees the close
