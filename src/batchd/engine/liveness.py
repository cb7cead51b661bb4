"""A fleet worker's liveness (PostgreSQL): its lock kept, its work given up in time when it is lost.

The store's `worker_lock` (store/base.py `WorkerLock`) proves this worker alive to the other
processes; the sweeps of any of them take over the requests of an identity whose lock they have
found free for `takeover_after`. `Liveness` keeps the lock for the dispatcher:

- it confirms the lock every LIVENESS_PING seconds;
- when the lock is lost (the database restarted, the connection dropped), claims stop; it takes a
  new lock, a new identity, and moves the requests in hand to it with a heartbeat (`renew`), leases
  first, so that no sweep finds them lapsed under a live lock; then claims resume;
- when no lock has been confirmed for half of `takeover_after`, the other processes may soon take
  this worker's requests: it gives them up (`abandon`: the dispatcher stops working on them) rather
  than ever run them beside another process, and releases them — back to pending, their claim not
  counted as a crash — as soon as the store answers.

Counting from the moment a confirmation was sent makes "half" a true bound: the lock was held
after that moment, so no sweep can have seen it free before, and no sweep takes over before it has
seen it free for all of `takeover_after`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from batchd import exceptions, models
from batchd.store.base import WorkerLock

logger = logging.getLogger("batchd.engine")

LIVENESS_PING = 0.5  # seconds between confirmations of the lock


class Liveness:
    """Keeps one worker's lock; `alive` says whether it may claim, `identity` whose name to claim in."""

    def __init__(
        self,
        lock: WorkerLock,
        worker_id: str,
        *,
        takeover_after: float,
        abandon: Callable[[], None],
        renew: Callable[[str], Awaitable[object]],
    ) -> None:
        """abandon: stop working on every request in hand (each given up with `give_up`).
        renew: heartbeat the requests in hand as the given identity (raises StoreError)."""
        self.lock = lock
        self.worker_id = worker_id
        self.identity = worker_id  #: the current lock's identity, once taken
        self.alive = False  #: the current lock is confirmed and holds the requests in hand
        self._stop_after = takeover_after / 2
        self._abandon = abandon
        self._renew = renew
        self._moving = False  # a new lock was taken: the requests in hand are not moved to it yet
        self._given_up: dict[int, int] = {}  # key -> the request's claim count while this worker held it
        self._deadline: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        """Takes the first lock; raises StoreUnavailable when the database cannot be reached."""
        sent = time.monotonic()
        identity = await self.lock.take(self.worker_id)
        if identity is None:
            raise exceptions.StoreUnavailable("the worker's liveness lock could not be taken")
        self.identity = identity
        self._confirmed(sent)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(LIVENESS_PING)
            await self.check()

    async def check(self) -> None:
        """One round: confirm the lock, or take a new one and move the requests in hand to it."""
        sent = time.monotonic()
        if not await self.lock.confirm():
            if self.alive:
                logger.warning("worker lock %s lost: claims stop until a new one is taken", self.identity)
            self.alive = False
            sent = time.monotonic()
            identity = await self.lock.take(self.worker_id)
            if identity is None:
                return
            self.identity, self._moving = identity, True
        if self._moving:
            try:
                await self._renew(self.identity)
            except exceptions.StoreError as exc:
                logger.warning("moving the requests in hand to %s failed, retrying: %s", self.identity, exc)
                return
            self._moving = False
        if not self.alive:
            logger.info("worker lock %s taken: claiming again", self.identity)
        self._confirmed(sent)
        await self.release()

    def give_up(self, requests: Iterable[models.ClaimedRequest]) -> None:
        """These requests will not be worked on here: release them when the store answers."""
        for req in requests:
            self._given_up[req.key] = req.claims + 1  # the count the store holds for this claim

    def claimed(self, requests: Iterable[models.ClaimedRequest]) -> None:
        """Claimed (again): a request taken back since it was given up is no longer to release."""
        for req in requests:
            self._given_up.pop(req.key, None)

    async def release(self) -> None:
        """Returns the requests given up to pending, uncounted; keeps them to try again on failure."""
        if not self._given_up:
            return
        given = dict(self._given_up)
        try:
            n = await self.lock.release(self.identity, given)
        except exceptions.StoreError as exc:
            logger.warning("releasing %d requests failed, retrying: %s", len(given), exc)
            return
        for key, claims in given.items():
            if self._given_up.get(key) == claims:
                del self._given_up[key]
        logger.info("released %d of %d requests given up", n, len(given))

    def close(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _confirmed(self, sent: float) -> None:
        """The lock was held at `sent` (monotonic), with the requests in hand under it."""
        self.alive = True
        self.close()
        delay = sent + self._stop_after - time.monotonic()
        self._deadline = asyncio.get_running_loop().call_later(max(0.0, delay), self._lapse)

    def _lapse(self) -> None:
        self._deadline = None
        self.alive = False
        logger.warning(
            "worker lock %s unconfirmed for %gs: giving up the requests in hand to the other processes",
            self.identity,
            self._stop_after,
        )
        self._abandon()
