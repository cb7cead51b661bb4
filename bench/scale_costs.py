"""The scale scenario's per-request costs (bench/scale.py): create, claim and result write, round by
round on stores of each size."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import orjson

from batchd import exceptions, models
from batchd.store import open_store
from batchd.store.base import Store
from bench.scale_stores import WORKSPACE, Backend, PostgresBackend, create, log, params

PROBE = 10_000  # requests created, claimed and completed per round; also the small queue
ROUNDS = 5  # rounds of each size, in turn
CLAIM = 256  # the engine's claim_chunk
COMPLETE = 1024  # results per write
LEASE = 600.0


@dataclass
class Costs:
    """Seconds per request of each operation, (wall, this process's CPU) per round."""

    create: list[tuple[float, float]] = field(default_factory=list)
    claim: list[tuple[float, float]] = field(default_factory=list)
    write: list[tuple[float, float]] = field(default_factory=list)

    def best(self, op: str) -> float:
        """The fastest round's wall time: on a shared machine the others carry other processes' time."""
        return min(wall for wall, _ in getattr(self, op))

    def best_cpu(self, op: str) -> float:
        """The least CPU time of a round (SQLite does all its work in this process's threads)."""
        return min(cpu for _, cpu in getattr(self, op))


class Clock:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def per(self, n: int) -> tuple[float, float]:
        return (time.perf_counter() - self.wall) / n, (time.process_time() - self.cpu) / n


async def probe(store: Store, costs: Costs, label: str) -> str:
    """One round: create a PROBE batch, claim PROBE requests, write their results; per-request costs.
    The probe batch's id."""
    ids, body = params(PROBE, label)
    now = time.time()
    clock = Clock()
    batch = await store.create_batch(
        workspace=WORKSPACE, custom_ids=ids, params=body, now=now, expires_at=now + 86_400
    )
    costs.create.append(clock.per(PROBE))
    claimed: list[models.ClaimedRequest] = []
    clock = Clock()
    while len(claimed) < PROBE:
        got = await store.claim_requests(
            "bench-scale", min(CLAIM, PROBE - len(claimed)), now=time.time(), lease=LEASE
        )
        if not got:
            break
        claimed += got
    costs.claim.append(clock.per(len(claimed)))
    outcomes = [
        models.Outcome(c.batch_id, c.index, c.custom_id, models.ResultType.SUCCEEDED, RESULT, key=c.key)
        for c in claimed
    ]
    clock = Clock()
    for i in range(0, len(outcomes), COMPLETE):
        await store.complete_requests(outcomes[i : i + COMPLETE], now=time.time())
    costs.write.append(clock.per(len(outcomes)))
    return batch.id


async def cancel(store: Store, batch_id: str, now: float) -> None:
    with contextlib.suppress(exceptions.InvalidBatchState):  # it ended: every request was claimed
        await store.cancel_batch(WORKSPACE, batch_id, now)


async def reset(store: Store, level: Level, probe_id: str | None) -> None:
    """Before a round, the level's open batches as at its start: the last round's probe batch is
    canceled, and a small queue (which a round's claims drain: each of its batches gives 1/11 of
    them) is replaced by a fresh one. The large queue loses under 1% a round."""
    now = time.time()
    if probe_id is not None:
        await cancel(store, probe_id, now)
    if level.queued <= PROBE and probe_id is not None:
        count = len(level.batches)
        for batch_id, _ in level.batches:
            await cancel(store, batch_id, now)
        level.batches = [
            ((await create(store, level.queued // count, f"r{now}-{i}", now)).id, now) for i in range(count)
        ]


RESULT = orjson.dumps(
    {
        "type": "succeeded",
        "message": {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "ok " * 40}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 300, "output_tokens": 40},
        },
    }
)


@dataclass
class Level:
    """What one queue size measured."""

    queued: int
    costs: Costs
    size: int = 0  # database bytes once the queue is in
    batches: list[tuple[str, float]] = field(default_factory=list)  # (id, created_at) of the queue's
    fill: float = 0.0  # seconds to create the queue


async def fill(store: Store, backend: Backend, queued: int, count: int) -> Level:
    """The queue: `count` batches of queued/count requests, created an hour ago a second apart
    (so that archival can pick the older half)."""
    if isinstance(backend, PostgresBackend):
        backend.empty = await backend.size(store)
    level = Level(queued, Costs())
    base = time.time() - 3600
    t0 = time.perf_counter()
    for i in range(count):
        b = await create(store, queued // count, f"q{i}", base + i)
        level.batches.append((b.id, base + i))
    level.fill = time.perf_counter() - t0
    await backend.settle(store)
    level.size = await backend.size(store)
    log(f"{backend.name}: {queued:,} queued in {level.fill:.1f} s, {level.size / queued:,.0f} bytes/request")
    return level


async def measure_costs(backends: list[Backend], shapes: list[tuple[int, int]]) -> list[Level]:
    """Fills each store, then probes them in turn, ROUNDS times: neighbouring rounds see the same load."""
    stores = [open_store(b.url()) for b in backends]
    try:
        levels = []
        for store, backend, (queued, count) in zip(stores, backends, shapes, strict=True):
            await store.open()
            levels.append(await fill(store, backend, queued, count))
        probes: list[str | None] = [None] * len(levels)
        for r in range(ROUNDS):
            for i, (store, level) in enumerate(zip(stores, levels, strict=True)):
                await reset(store, level, probes[i])
                probes[i] = await probe(store, level.costs, f"p{r}")
        for backend, level in zip(backends, levels, strict=True):
            c = level.costs
            log(
                f"{backend.name} at {level.queued:,} in {len(level.batches)}: CPU create "
                f"{c.best_cpu('create') * 1e6:.1f}, claim {c.best_cpu('claim') * 1e6:.1f}, write "
                f"{c.best_cpu('write') * 1e6:.1f}; wall create "
                f"{c.best('create') * 1e6:.1f}, claim {c.best('claim') * 1e6:.1f}, write "
                f"{c.best('write') * 1e6:.1f} µs/request, best of {ROUNDS}"
            )
        return levels
    finally:
        for store in stores:
            await store.aclose()
