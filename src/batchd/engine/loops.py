"""The engine's long-running loops: each supervised (restarted if it fails unexpectedly) and kept
by name, so that `Dispatcher.stop()` ends each at its turn rather than in the order they started."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger("batchd.engine")

RESTART_DELAY = 0.5  # seconds before a loop that failed unexpectedly runs again


@dataclasses.dataclass(frozen=True)
class Loops:
    """The engine's supervised loops, by name: `stop()` ends each at its turn."""

    claim: asyncio.Task[None]
    writer: asyncio.Task[None]
    maintenance: asyncio.Task[None]
    heartbeat: asyncio.Task[None]
    watchdog: asyncio.Task[None]
    # A fleet worker's lock (PostgreSQL): kept until the very end of stop(), so calls finishing in
    # the shutdown grace are not given up for want of confirmations.
    liveness: asyncio.Task[None] | None
    webhooks: asyncio.Task[None] | None = None  # the webhook outbox's deliveries (issue 17)

    @property
    def housekeeping(self) -> tuple[asyncio.Task[None], ...]:
        extra = () if self.webhooks is None else (self.webhooks,)
        return (self.maintenance, self.heartbeat, self.watchdog, *extra)


async def supervised(loop: Callable[[], Awaitable[None]]) -> None:
    """Runs one of the engine's loops for the life of the engine: a loop that fails unexpectedly is
    logged and started again, so one untranslated driver error cannot silently stop claiming,
    writing results or heartbeats while the process lives on."""
    while True:
        try:
            await loop()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("engine loop %s failed; restarting it", loop.__name__)
            await asyncio.sleep(RESTART_DELAY)
