"""A route's slots: its calls in flight, with realtime calls admitted before batch work.

`POST /v1/messages` (and count_tokens) acquire as realtime, the dispatcher as batch. A freed slot
goes to the realtime call waiting longest, and only when none waits to the batch call waiting
longest, so a realtime call never waits behind the batch calls queued. Priority alone still leaves
it waiting for a call in flight to end, which can be a whole call's latency: batch calls started
together end together, and the batch calls queued take every slot they free. So batch work also
leaves room (`RealtimeDemand.kept`): as many slots as realtime calls were in flight or waiting at
once within the last DEMAND_MEMORY seconds (at most half the slots), and never fewer than the
`realtime_reserve` setting. With no realtime traffic, batch work has every slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator

from batchd.engine.adaptive import AdaptiveLimit, batch_cap

DEMAND_MEMORY = 30.0  # seconds a route keeps room for the realtime calls it last saw at once


class RealtimeDemand:
    """How many slots batch work leaves to realtime calls, from the realtime calls seen lately."""

    def __init__(self, limit: int, reserve: int = 0) -> None:
        self.limit = limit
        self.reserve = max(0, min(reserve, limit - 1))  # batch work always keeps one slot
        self.running = 0  # realtime calls holding a slot
        self._seen = 0  # most realtime calls in flight or waiting at once lately
        self._seen_at = 0.0  # monotonic time _seen was last reached

    def arrive(self, demand: int) -> None:
        """A realtime call arrives, making `demand` in flight or waiting, itself included."""
        if demand >= self._seen:
            self._seen, self._seen_at = demand, time.monotonic()

    def kept(self) -> int:
        """Slots batch work leaves to realtime calls now."""
        if self._seen and time.monotonic() - self._seen_at > DEMAND_MEMORY:
            self._seen, self._seen_at = self.running, time.monotonic()
        return max(self.reserve, min(self._seen, self.limit // 2))


class Slots:
    """A semaphore of `limit` slots with two queues; FIFO within each, as asyncio.Semaphore is."""

    def __init__(self, limit: int, *, reserve: int = 0, adaptive: AdaptiveLimit | None = None) -> None:
        self.limit = limit
        self.free = limit
        self.demand = RealtimeDemand(limit, reserve)
        self.adaptive = adaptive  #: the batch calls' own limit, learnt from the upstream (engine/adaptive.py)
        self._realtime: deque[asyncio.Future[None]] = deque()
        self._batch: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        """Whether a batch call would have to wait."""
        return not self._batch_room() or bool(self._realtime or self._batch)

    def _batch_room(self) -> bool:
        return self.free > 0 and not self.pressed()

    def pressed(self) -> bool:
        """Whether batch work holds every slot it may: its share, under the adaptive limit if any."""
        batch_running = self.limit - self.free - self.demand.running
        return batch_running >= batch_cap(self.limit, self.demand.kept(), self.adaptive)

    @property
    def waiting(self) -> tuple[int, int]:
        """Calls waiting for a slot: (realtime, batch)."""
        return len(self._realtime), len(self._batch)

    def hold(self, *, realtime: bool = False) -> contextlib.AbstractAsyncContextManager[None]:
        """Holds a slot for the length of the `async with`."""
        return self._held(realtime)

    @contextlib.asynccontextmanager
    async def _held(self, realtime: bool) -> AsyncIterator[None]:
        await self.acquire(realtime=realtime)
        try:
            yield
        finally:
            self.release(realtime=realtime)

    async def acquire(self, *, realtime: bool = False) -> None:
        if realtime:
            self.demand.arrive(self.demand.running + len(self._realtime) + 1)
            if self.free > 0 and not self._realtime:
                self._take(realtime=True)
                return
        elif not self.locked():
            self._take(realtime=False)
            return
        queue = self._realtime if realtime else self._batch
        waiter = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(realtime=realtime)  # granted, then cancelled before it could run
            elif waiter in queue:
                queue.remove(waiter)
            raise

    def _take(self, *, realtime: bool) -> None:
        self.free -= 1
        if realtime:
            self.demand.running += 1

    def release(self, *, realtime: bool = False) -> None:
        self.free += 1
        if realtime:
            self.demand.running -= 1
        while self.free > 0 and self._realtime:
            self._grant(self._realtime.popleft(), realtime=True)
        while self._batch and self._batch_room():
            self._grant(self._batch.popleft(), realtime=False)

    def _grant(self, waiter: asyncio.Future[None], *, realtime: bool) -> None:
        if not waiter.done():  # else cancelled while waiting: its acquire() has given up its place
            self._take(realtime=realtime)
            waiter.set_result(None)
