"""Prefix-aware dispatch: run requests that share a prompt prefix next to each other.

Engines with prefix caching (vLLM, SGLang, llama.cpp) reuse the KV cache of a prompt prefix only
while it is still cached, and llama.cpp gives a new request the slot whose cached prompt shares the
most with it. A batch in arrival order interleaves its prefixes, so each slot keeps switching
between them; grouped, each prefix is computed once per slot and then read from cache.

The prefix is what comes before the part that varies in the usual batch: the model, `system`,
`tools` and `tool_choice`, every message but the last, and every content block of the last message
but its last. The dispatcher starts the requests of a claimed chunk in `order()`'s order; the route's
semaphore admits them in that order (asyncio semaphores are FIFO), and with --group-prefixes a
PrefixScheduler then admits them to the engine's slots (`engine.router.Route.admit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson

from batchd import models
from batchd.engine import adaptive, admission

WINDOW = 16  # with --group-prefixes: calls let through to a scheduled route per slot


def prefix_key(raw: bytes | dict[str, Any]) -> bytes:
    """A digest of the request's shareable prompt prefix (params that do not parse: their own)."""
    try:
        params = orjson.loads(raw) if isinstance(raw, bytes) else raw
        if isinstance(params.get("body"), dict) and "url" in params:  # an OpenAI batch line
            params = params["body"]
        messages = params.get("messages") or []
        head: list[Any] = list(messages[:-1])
        if messages and isinstance(messages[-1], dict):
            content = messages[-1].get("content")
            if isinstance(content, list) and len(content) > 1:
                head.append(content[:-1])
        parts = [
            params.get("model"),
            params.get("system"),
            params.get("tools"),
            params.get("tool_choice"),
            head,
        ]
        blob = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        blob = raw if isinstance(raw, bytes) else repr(raw).encode()
    return hashlib.blake2b(blob, digest_size=12).digest()


def order(claimed: Sequence[models.ClaimedRequest]) -> list[models.ClaimedRequest]:
    """The chunk dealt round-robin by prefix: one request of each prefix, then the next of each, ...

    Each prefix's first request (its leader) comes before any follower, and consecutive requests
    differ in prefix, so the calls admitted together (a route's window, see PrefixScheduler) hold as
    many prefixes as they can, each kept to its own engine slot.
    """
    if len(claimed) < 3:
        return list(claimed)
    groups: dict[bytes, list[models.ClaimedRequest]] = {}
    for req in claimed:
        groups.setdefault(prefix_key(req.params), []).append(req)
    if len(groups) in (1, len(claimed)):
        return list(claimed)
    lists = list(groups.values())
    return [group[i] for i in range(max(map(len, lists))) for group in lists if i < len(group)]


class PrefixScheduler:
    """Admits one route's calls to its engine slots, prefix by prefix.

    - at most `slots` calls run at once;
    - a prefix's first call runs alone: its followers wait until it has put the prefix in the
      engine's cache, rather than each computing it at the same moment;
    - then at most max(1, slots // prefixes waiting or running) calls of one prefix run at once, so
      the slots are shared among the prefixes instead of all switching to one;
    - a freed slot goes first to another call of the prefix that just finished on it (llama.cpp
      gives a call the slot whose cached prompt matches best: that very slot), else to the prefix
      waiting longest.

    The route's semaphore lets WINDOW times as many calls reach the scheduler as it has slots, so
    that it has a choice of prefixes. With 16 slots, 32 prompts interleaved and no host prompt
    cache (bench/prefix.py), a window of 4× the slots read 67% of the prompt tokens from cache, 8×
    77%, 16× 85% (of the 88% possible). A call's wait here is admission, before its timeout starts:
    it counts only toward the request's expiry.
    """

    WARM_MAX = 4096  # prefixes remembered as warmed

    def __init__(self, slots: int, *, reserve: int = 0, limit: adaptive.AdaptiveLimit | None = None) -> None:
        self.slots = slots
        self.free = slots
        self.demand = admission.RealtimeDemand(slots, reserve)  # the slots batch calls leave to realtime ones
        self.adaptive = limit  # the batch calls' own limit, learnt from the upstream (engine/adaptive.py)
        # Realtime calls waiting (engine/admission.py): served before any batch call, prefix or not.
        self._urgent: deque[tuple[bytes, asyncio.Future[None]]] = deque()
        self._running: dict[bytes, int] = {}
        self._in_play: dict[bytes, int] = {}  # running + waiting, per prefix
        self._waiting: dict[bytes, deque[asyncio.Future[None]]] = {}  # insertion order: longest waiting
        self._warm: OrderedDict[bytes, None] = OrderedDict()

    @contextlib.asynccontextmanager
    async def slot(self, params: dict[str, Any], *, realtime: bool = False) -> AsyncIterator[None]:
        """Holds one slot for a call with these params; the prefix counts as warmed when the call
        inside ends without an exception. A realtime call goes before every batch call waiting."""
        key = prefix_key(params)
        await self.acquire(key, realtime=realtime)
        warmed = False
        try:
            yield
            warmed = True
        finally:
            self.release(key, warmed, realtime=realtime)

    def _eligible(self, key: bytes) -> bool:
        running = self._running.get(key, 0)
        if running and key not in self._warm:
            return False  # the leader is still warming the cache
        return running < max(1, self.slots // max(1, len(self._in_play)))

    def _start(self, key: bytes, *, realtime: bool = False) -> None:
        self.free -= 1
        self._running[key] = self._running.get(key, 0) + 1
        if realtime:
            self.demand.running += 1

    def _batch_room(self) -> bool:
        return self.free > 0 and not self.pressed()

    def pressed(self) -> bool:
        """Whether batch work holds every slot it may: its share, under the adaptive limit if any."""
        batch_running = self.slots - self.free - self.demand.running
        return batch_running >= adaptive.batch_cap(self.slots, self.demand.kept(), self.adaptive)

    async def acquire(self, key: bytes, *, realtime: bool = False) -> None:
        self._in_play[key] = self._in_play.get(key, 0) + 1
        if realtime:
            self.demand.arrive(self.demand.running + len(self._urgent) + 1)
            if self.free > 0 and not self._urgent:
                self._start(key, realtime=True)
                return
        idle = not self._waiting and not self._urgent and self._batch_room()
        if not realtime and idle and self._eligible(key):
            self._start(key)
            return
        waiter = asyncio.get_running_loop().create_future()
        if realtime:
            self._urgent.append((key, waiter))
        else:
            self._waiting.setdefault(key, deque()).append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(key, realtime=realtime)  # granted, then cancelled before it could run
            else:
                self._forget(key, waiter)
            raise

    def release(self, key: bytes, warmed: bool = True, *, realtime: bool = False) -> None:
        self.free += 1
        if realtime:
            self.demand.running -= 1
        self._running[key] -= 1
        if not self._running[key]:
            del self._running[key]
        self._leave(key)
        if warmed:
            self._warm[key] = None
            self._warm.move_to_end(key)
            if len(self._warm) > self.WARM_MAX:
                self._warm.popitem(last=False)
        self._grant(key)

    def _leave(self, key: bytes) -> None:
        self._in_play[key] -= 1
        if not self._in_play[key]:
            del self._in_play[key]

    def _forget(self, key: bytes, waiter: asyncio.Future[None]) -> None:
        if (key, waiter) in self._urgent:
            self._urgent.remove((key, waiter))
        queue = self._waiting.get(key)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._waiting[key]
        self._leave(key)
        self._grant(None)

    def _grant(self, first: bytes | None) -> None:
        while self.free > 0 and self._urgent:
            hurried, urgent = self._urgent.popleft()
            if not urgent.done():  # else cancelled while waiting: its acquire() gives its place back
                self._start(hurried, realtime=True)
                urgent.set_result(None)
        while self._waiting and self._batch_room():
            order = list(self._waiting)
            if first is not None and first in self._waiting:
                order.remove(first)
                order.insert(0, first)
            key = next((k for k in order if self._eligible(k)), None)
            if key is None:
                return
            queue = self._waiting[key]
            waiter = queue.popleft()
            if not queue:
                del self._waiting[key]
            if waiter.done():  # cancelled while waiting: its acquire() gives its place back
                continue
            self._start(key)
            waiter.set_result(None)
