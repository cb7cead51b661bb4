"""The engine's sweeps, at start and every `maintenance_interval`: expiry of batches, lapsed leases
taken back, archival, old idempotency keys and webhook rows, the OpenAI wire's expired uploads,
and the server tools' expired containers and output files (at start also the homes a crash left behind)."""

from __future__ import annotations

import asyncio
import logging
import time

from batchd import exceptions
from batchd.config import Settings
from batchd.store import Store
from batchd.tools.kit import ToolKit

logger = logging.getLogger("batchd.engine")


async def sweep(
    store: Store, settings: Settings, tools: ToolKit | None, now: float, *, starting: bool = False
) -> None:
    await store.expire_due(now=now, grace=settings.expiry_grace)
    await store.recover_leases(now=now, takeover_after=settings.takeover_after)
    await store.archive_due(now=now, retention=settings.retention)
    await store.sweep_hooks(
        now=now, idempotency_window=settings.idempotency_window, retention=settings.retention
    )
    await store.expire_openai_files(now=now)
    if tools is not None:
        await tools.maintain(now, starting=starting)


async def every_interval(store: Store, settings: Settings, tools: ToolKit | None) -> None:
    """Sweeps for the life of the engine; a store that fails a sweep is logged and tried again."""
    while True:
        await asyncio.sleep(settings.maintenance_interval)
        try:
            await sweep(store, settings, tools, time.time())
        except exceptions.StoreError as exc:
            logger.warning("maintenance failed: %s", exc)
