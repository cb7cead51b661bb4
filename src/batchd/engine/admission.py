"""A route's slots: its calls in flight, with realtime calls admitted before batch work.

`POST /v1/messages` (and count_tokens) acquire as realtime, the dispatcher as batch. A freed slot
goes to the realtime call waiting longest, and only when none waits to the batch call waiting
longest, so a realtime call waits behind batch work at most until the first call in flight ends,
never behind the batch calls queued. `reserve` slots are moreover kept from batch work: a realtime
call finds one free at once while no more than `reserve` realtime calls run (at the cost of that
many slots idle while there are none).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class Slots:
    """A semaphore of `limit` slots with two queues; FIFO within each, as asyncio.Semaphore is."""

    def __init__(self, limit: int, *, reserve: int = 0) -> None:
        self.limit = limit
        self.reserve = max(0, min(reserve, limit - 1))  # batch work always keeps one slot
        self.free = limit
        self._realtime: deque[asyncio.Future[None]] = deque()
        self._batch: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        """Whether a batch call would have to wait."""
        return self.free <= self.reserve or bool(self._realtime or self._batch)

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
            self.release()

    async def acquire(self, *, realtime: bool = False) -> None:
        if realtime and self.free > 0 and not self._realtime:
            self.free -= 1
            return
        if not realtime and not self.locked():
            self.free -= 1
            return
        queue = self._realtime if realtime else self._batch
        waiter = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted, then cancelled before it could run
            elif waiter in queue:
                queue.remove(waiter)
            raise

    def release(self) -> None:
        self.free += 1
        self._grant(self._realtime, 0)
        self._grant(self._batch, self.reserve)

    def _grant(self, queue: deque[asyncio.Future[None]], keep: int) -> None:
        while self.free > keep and queue:
            waiter = queue.popleft()
            if waiter.done():  # cancelled while waiting: its acquire() has given up its place
                continue
            self.free -= 1
            waiter.set_result(None)
