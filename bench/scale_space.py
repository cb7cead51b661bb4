"""The scale scenario's space returned (bench/scale.py): cancel, archive the older half, a new batch,
delete the rest; the database's size after each, settled as its maintenance would."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from batchd import models
from batchd.store import open_store
from bench.scale_costs import Level
from bench.scale_stores import WORKSPACE, Backend, create, log, mb, timed


@dataclass
class Reclaim:
    sizes: dict[str, int] = field(default_factory=dict)  # step: database bytes after it
    seconds: dict[str, float] = field(default_factory=dict)  # step: seconds it took
    settle: dict[str, tuple[float, int]] = field(default_factory=dict)  # step: (seconds, sweeps) to settle
    longest_delete: float = 0.0  # seconds of the slowest delete_batch
    reused: int = 0  # bytes the database grew by for a new batch after the delete
    reuse_requests: int = 0


async def reclaim(backend: Backend, level: Level) -> Reclaim:
    store = open_store(backend.url())
    await store.open()
    out = Reclaim()

    async def size(step: str) -> None:
        t0 = time.perf_counter()
        sweeps = await backend.settle(store)
        out.settle[step] = (time.perf_counter() - t0, sweeps)
        out.sizes[step] = await backend.size(store)
        log(
            f"{backend.name}: {step}: {mb(out.sizes[step])} (settled: {sweeps} sweeps, "
            f"{out.settle[step][0]:.1f} s)"
        )

    try:
        await size("after the run")
        everything, _ = await store.list_batches(WORKSPACE, limit=1000)
        await store.recover_leases(now=time.time(), everything=True)  # the stopped server's
        t0 = time.perf_counter()
        for b in everything:
            if b.processing_status != models.ProcessingStatus.ENDED:
                await store.cancel_batch(WORKSPACE, b.id, time.time())
        out.seconds["cancel"] = time.perf_counter() - t0
        await size("canceled")
        half = level.batches[len(level.batches) // 2 - 1][1]  # created_at of the older half's newest
        now = time.time()
        out.seconds["archive"] = await timed(lambda: store.archive_due(now=now, retention=now - half))
        await size("older half archived")
        out.reuse_requests = level.queued // len(level.batches)
        await create(store, out.reuse_requests, "again", time.time())
        await size("a new batch")
        out.reused = out.sizes["a new batch"] - out.sizes["older half archived"]
        archived = {i for i, c in level.batches if c <= half}
        t0 = time.perf_counter()
        for b in everything:
            if b.id not in archived:
                out.longest_delete = max(
                    out.longest_delete, await timed(lambda b=b: store.delete_batch(WORKSPACE, b.id))
                )
        out.seconds["delete"] = time.perf_counter() - t0
        await size("the rest deleted")
        return out
    finally:
        await store.aclose()
