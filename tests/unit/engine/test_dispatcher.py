"""The dispatcher on a real SQLite store with scripted backends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchd import config, exceptions, models
from batchd.backends.simulator import SimulatedBackend
from batchd.engine import Dispatcher, prefix
from batchd.engine.router import Route, Router
from batchd.metrics import Metrics
from batchd.store import Store, base, open_store
from batchd.store.sqlite import SQLiteStore

WS = "default"


class Scripted:
    """A backend whose behaviour per attempt is given by a function of (params, attempt)."""

    name = "scripted"

    def __init__(self, behaviour: Any) -> None:
        self.behaviour = behaviour
        self.calls: list[tuple[str, int]] = []

    async def create_message(self, params: dict[str, Any], *, attempt: int = 1) -> dict[str, Any]:
        text = params["messages"][0]["content"]
        self.calls.append((text, attempt))
        return await self.behaviour(text, attempt)

    async def aclose(self) -> None:
        pass


def message(text: str) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'd.db'}")
    await s.open()
    yield s
    await s.aclose()


SIMPLE = b'{"model": "m", "max_tokens": 3, "messages": [{"role": "user", "content": "x"}]}'


async def make_batch(store: Store, params: list[bytes]) -> models.Batch:
    now = time.time()
    return await store.create_batch(
        workspace=WS,
        custom_ids=[f"r{i}" for i in range(len(params))],
        params=params,
        now=now,
        expires_at=now + 100,
    )


async def until_ended(store: Store, batch_id: str, timeout: float = 10) -> models.Batch:
    deadline = time.monotonic() + timeout
    while (batch := await store.get_batch(WS, batch_id)).processing_status != models.ProcessingStatus.ENDED:
        assert time.monotonic() < deadline, "batch did not end"
        await asyncio.sleep(0.01)
    return batch


async def run_batch(
    store: Store,
    backend: Any,
    texts: list[str],
    timeout: float = 10,
    metrics: Metrics | None = None,
    **env: str,
) -> dict[str, Any]:
    settings = config.load(environ={f"BATCHD_{k.upper()}": v for k, v in env.items()})
    params = [
        orjson.dumps({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": t}]})
        for t in texts
    ]
    batch = await make_batch(store, params)
    router = Router(Route(backend, asyncio.Semaphore(settings.concurrency)))
    engine = Dispatcher(settings, store, router, metrics=metrics)
    await engine.start()
    try:
        await until_ended(store, batch.id, timeout)
    finally:
        await engine.stop()
    out = {}
    async for chunk in store.iter_results(WS, batch.id):
        for line in chunk.splitlines():
            row = orjson.loads(line)
            out[row["custom_id"]] = row["result"]
    return out


async def test_retries_transient_errors_then_succeeds(store: Store) -> None:
    async def flaky(text: str, attempt: int) -> dict[str, Any]:
        if attempt < 3:
            raise exceptions.BackendError("busy", status=529, error_type="overloaded_error", retryable=True)
        return message(text)

    backend = Scripted(flaky)
    results = await run_batch(store, backend, ["a"], retry_base="1ms", retry_max="5ms")
    assert results["r0"]["type"] == "succeeded"
    assert backend.calls == [("a", 1), ("a", 2), ("a", 3)]


async def test_gives_up_after_max_attempts_with_the_upstream_error(store: Store) -> None:
    async def always(text: str, attempt: int) -> dict[str, Any]:
        raise exceptions.BackendError(
            "slow down", status=429, error_type="rate_limit_error", retryable=True, retry_after=0.001
        )

    backend = Scripted(always)
    results = await run_batch(store, backend, ["a"], max_attempts="4")
    assert len(backend.calls) == 4
    assert results["r0"]["error"]["error"] == {"type": "rate_limit_error", "message": "slow down"}


async def test_final_errors_are_not_retried(store: Store) -> None:
    async def final(text: str, attempt: int) -> dict[str, Any]:
        raise exceptions.BackendError("no", status=400, error_type="invalid_request_error")

    backend = Scripted(final)
    results = await run_batch(store, backend, ["a"])
    assert len(backend.calls) == 1 and results["r0"]["type"] == "errored"


async def test_call_timeout_is_a_retryable_timeout_error(store: Store) -> None:
    async def hang_first(text: str, attempt: int) -> dict[str, Any]:
        if attempt == 1:
            await asyncio.sleep(30)
        return message(text)

    backend = Scripted(hang_first)
    results = await run_batch(store, backend, ["a", "b"], request_timeout="200ms", retry_base="1ms")
    assert {r["type"] for r in results.values()} == {"succeeded"}
    assert sorted(backend.calls) == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]

    async def hang(text: str, attempt: int) -> dict[str, Any]:
        await asyncio.sleep(30)
        return message(text)

    results = await run_batch(
        store, Scripted(hang), ["c"], request_timeout="100ms", retry_base="1ms", max_attempts="2"
    )
    assert results["r0"]["error"]["error"]["type"] == "timeout_error"


async def test_a_wait_in_the_prefix_scheduler_does_not_count_toward_the_call_timeout(store: Store) -> None:
    async def slow(text: str, attempt: int) -> dict[str, Any]:
        await asyncio.sleep(0.15)
        return message(text)

    # One engine slot, one prefix: the calls run one after another, the last after ~0.45 s of
    # waiting, longer than the 0.3 s timeout each call has once it runs.
    engine = Scripted(slow)
    texts = ["a", "b", "c", "d"]
    scheduled = prefix.PrefixScheduledBackend(engine, slots=1)
    metrics = Metrics()
    results = await run_batch(
        store, scheduled, texts, metrics=metrics, request_timeout="300ms", max_attempts="1"
    )
    assert {cid: r["type"] for cid, r in results.items()} == {f"r{i}": "succeeded" for i in range(4)}
    assert sorted(engine.calls) == [(t, 1) for t in texts]
    # The latency metric leaves the wait out too: ~4 × 0.15 s, not 0.15 + 0.3 + 0.45 + 0.6 s.
    total = metrics.registry.get_sample_value("batchd_backend_latency_seconds_sum", {"model": "m"})
    assert total is not None and 0.55 < total < 1.0, total


async def test_the_last_results_are_written_without_waiting_for_company(store: Store) -> None:
    async def ok(text: str, attempt: int) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return message(text)

    # Results wait up to commit_interval to share a commit, but once nothing is left to run they
    # are written at once: the batch ends long before the 5 s interval is up.
    store.commit_interval = 5.0  # type: ignore[misc]
    results = await run_batch(store, Scripted(ok), ["a", "b", "c"], timeout=2)
    assert {r["type"] for r in results.values()} == {"succeeded"}


async def test_invalid_params_do_not_reach_the_backend(store: Store) -> None:
    async def ok(text: str, attempt: int) -> dict[str, Any]:
        return message(text)

    backend = Scripted(ok)
    settings = config.load(environ={})
    batch = await make_batch(store, [b'{"model": "m", "messages": []}', SIMPLE])
    engine = Dispatcher(settings, store, Router(Route(backend, asyncio.Semaphore(4))))
    await engine.start()
    await until_ended(store, batch.id)
    await engine.stop()
    assert backend.calls == [("x", 1)]
    got = await store.get_batch(WS, batch.id)
    assert got.request_counts == models.RequestCounts(succeeded=1, errored=1)


async def test_concurrency_is_bounded(store: Store) -> None:
    running = 0
    peak = 0

    async def slow(text: str, attempt: int) -> dict[str, Any]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return message(text)

    results = await run_batch(
        store, Scripted(slow), [str(i) for i in range(60)], concurrency="7", claim_chunk="3"
    )
    assert len(results) == 60
    assert peak == 7


async def test_fleet_limited_routes_call_inside_a_store_slot(store: Store) -> None:
    held: list[base.Slot] = []
    events: list[str] = []

    class Slots:
        async def acquire(self, name: str, limit: int, *, deadline: float) -> base.Slot:
            assert (name, limit) == ("m", 2) and deadline > time.monotonic()
            events.append("wait")
            if events.count("wait") == 1:  # a full fleet: the first try times out, its retry gets a slot
                raise TimeoutError
            held.append(base.Slot(route=name, number=0, session=0))
            events.append("acquire")
            return held[-1]

        async def release(self, slot: base.Slot) -> None:
            held.remove(slot)
            events.append("release")

    async def answer(text: str, attempt: int) -> dict[str, Any]:
        assert len(held) == 1
        events.append("call")
        return message(text)

    assert isinstance(store, SQLiteStore)
    store.fleet_slots = Slots()  # scripted fleet slots on a store that has none of its own
    settings = config.load(
        environ={"BATCHD_ROUTES": '[{"model": "m", "fleet_concurrency": 2}]', "BATCHD_RETRY_BASE": "0.1s"}
    )
    router = Router.from_settings(settings)
    backend = Scripted(answer)
    router.routes[0].backend = backend
    batch = await make_batch(store, [SIMPLE])
    engine = Dispatcher(settings, store, router)
    await engine.start()
    try:
        ended = await until_ended(store, batch.id)
    finally:
        await engine.stop()
        await router.aclose()
    assert ended.request_counts.succeeded == 1
    assert events == ["wait", "wait", "acquire", "call", "release"] and not held
    assert backend.calls == [("x", 2)]  # the slot timeout was a retryable error, then it ran


async def test_requests_abandoned_by_crashed_workers_are_errored(store: Store) -> None:
    batch = await make_batch(store, [SIMPLE])
    now = batch.created_at
    for _ in range(2):  # two workers claim it and die
        assert await store.claim_requests("dead", 10, now=now, lease=1)
        await store.recover_leases(now=now, everything=True)

    async def ok(text: str, attempt: int) -> dict[str, Any]:
        return message(text)

    backend = Scripted(ok)
    engine = Dispatcher(
        config.load(environ={"BATCHD_MAX_CLAIMS": "2"}), store, Router(Route(backend, asyncio.Semaphore(4)))
    )
    await engine.start()
    await until_ended(store, batch.id)
    await engine.stop()
    assert backend.calls == []
    assert (await store.get_batch(WS, batch.id)).request_counts.errored == 1


async def test_stop_leaves_unfinished_work_for_the_next_start(store: Store) -> None:
    async def slow(text: str, attempt: int) -> dict[str, Any]:
        await asyncio.sleep(30)
        return message(text)

    batch = await make_batch(store, [SIMPLE])
    engine = Dispatcher(config.load(environ={}), store, Router(Route(Scripted(slow), asyncio.Semaphore(4))))
    await engine.start()
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await engine.stop(grace=0.1)
    assert time.monotonic() - started < 2
    assert (await store.get_batch(WS, batch.id)).request_counts.processing == 1
    assert await store.recover_leases(now=time.time(), everything=True) == 1


class CountingSimulator(SimulatedBackend):
    """The real simulator, counting how the dispatcher called it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answered: list[int] = []  # attempts answered in line, synchronously
        self.awaited: list[int] = []  # attempts awaited as a task's backend call

    def answer(self, params: dict[str, Any], *, attempt: int = 1) -> tuple[dict[str, Any], float]:
        self.answered.append(attempt)
        return super().answer(params, attempt=attempt)

    async def create_message(self, params: dict[str, Any], *, attempt: int = 1) -> dict[str, Any]:
        self.awaited.append(attempt)
        message, pause = super().answer(params, attempt=attempt)  # as the simulator's own, uncounted
        if pause > 0:
            await asyncio.sleep(pause)
        return message


def sim_params(text: str, **extra: Any) -> bytes:
    return orjson.dumps(
        {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": text}], **extra}
    )


async def run_on(store: Store, backend: Any, params: list[bytes], **env: str) -> tuple[models.Batch, Metrics]:
    settings = config.load(environ={f"BATCHD_{k.upper()}": v for k, v in env.items()})
    batch = await make_batch(store, params)
    metrics = Metrics()
    route = Route(backend, asyncio.Semaphore(settings.concurrency))
    engine = Dispatcher(settings, store, Router(route), metrics=metrics)
    await engine.start()
    try:
        return await until_ended(store, batch.id), metrics
    finally:
        await engine.stop()


async def results_of(store: Store, batch_id: str) -> dict[str, Any]:
    out = {}
    async for chunk in store.iter_results(WS, batch_id):
        for line in chunk.splitlines():
            row = orjson.loads(line)
            out[row["custom_id"]] = row["result"]
    return out


async def test_an_instant_backend_is_answered_in_line_with_the_task_path_s_results(store: Store) -> None:
    params = [sim_params(f"question {i}") for i in range(50)]
    inline = CountingSimulator()
    batch, _ = await run_on(store, inline, params)
    assert batch.request_counts.succeeded == 50
    assert len(inline.answered) == 50 and inline.awaited == []

    # The same simulator behind a latency (never in line) gives the very same results.
    delayed = CountingSimulator(latency=0.001)
    other, _ = await run_on(store, delayed, params)
    assert len(delayed.awaited) == 50
    first, second = await results_of(store, batch.id), await results_of(store, other.id)
    assert first == second and {r["type"] for r in first.values()} == {"succeeded"}


async def test_in_line_outcomes_keep_retries_delays_and_errors(store: Store) -> None:
    backend = CountingSimulator()
    params = [
        sim_params("plain"),
        sim_params("@sim:fail=529x2 then fine"),
        sim_params("@sim:error=invalid_request"),
        sim_params("@sim:delay=0.05 slow"),
        sim_params("@sim:fail=429"),
        b'{"model": "m", "messages": []}',
    ]
    batch, metrics = await run_on(store, backend, params, retry_base="1ms", retry_max="5ms", max_attempts="3")
    assert batch.request_counts == models.RequestCounts(succeeded=3, errored=3)
    results = await results_of(store, batch.id)
    assert [results[f"r{i}"]["type"] for i in range(6)] == [
        "succeeded", "succeeded", "errored", "succeeded", "errored", "errored",
    ]  # fmt: skip
    assert results["r2"]["error"]["error"]["type"] == "invalid_request_error"
    assert results["r4"]["error"]["error"]["type"] == "rate_limit_error"
    assert results["r5"]["error"]["error"]["message"] == "max_tokens: Field required"
    # Attempt 1 of every valid request in line; the retries and the delayed request in tasks.
    assert backend.answered == [1, 1, 1, 1, 1]
    assert sorted(backend.awaited) == [1, 2, 2, 3, 3]
    registry = metrics.registry
    assert registry.get_sample_value("batchd_retries_total", {"error_type": "overloaded_error"}) == 2
    assert registry.get_sample_value("batchd_retries_total", {"error_type": "rate_limit_error"}) == 2
    assert registry.get_sample_value("batchd_requests_total", {"result": "succeeded", "model": "m"}) == 3
    # Every call but the in-line one that found a delay to wait (its task's call counts).
    assert registry.get_sample_value("batchd_backend_latency_seconds_count", {"model": "m"}) == 9


async def test_a_full_route_is_not_overtaken_in_line(store: Store) -> None:
    backend = CountingSimulator()
    settings = config.load(environ={})
    limit = asyncio.Semaphore(1)
    await limit.acquire()  # the route's one slot is taken: requests must wait for it in tasks
    batch = await make_batch(store, [sim_params("a"), sim_params("b")])
    engine = Dispatcher(settings, store, Router(Route(backend, limit)))
    await engine.start()
    try:
        await asyncio.sleep(0.2)
        assert backend.answered == [] and backend.awaited == []
        assert engine.inflight == 2
        limit.release()
        await until_ended(store, batch.id)
    finally:
        await engine.stop()
    assert backend.answered == [] and backend.awaited == [1, 1]


async def test_claims_never_exceed_the_free_capacity(store: Store) -> None:
    async def slow(text: str, attempt: int) -> dict[str, Any]:
        await asyncio.sleep(0.005)
        return message(text)

    settings = config.load(environ={"BATCHD_CONCURRENCY": "6", "BATCHD_CLAIM_CHUNK": "4"})
    batch = await make_batch(store, [SIMPLE] * 60)
    engine = Dispatcher(settings, store, Router(Route(Scripted(slow), asyncio.Semaphore(6))))
    claim = store.claim_requests
    held: list[int] = []  # at each claim: what it may bring plus what the engine holds unsettled

    async def watched_claim(worker_id: str, limit: int, **kwargs: Any) -> list[models.ClaimedRequest]:
        held.append(limit + engine.claimed)
        return await claim(worker_id, limit, **kwargs)

    store.claim_requests = watched_claim  # type: ignore[method-assign]
    await engine.start()
    try:
        got = await until_ended(store, batch.id)
    finally:
        await engine.stop()
    assert got.request_counts.succeeded == 60
    assert len(held) >= 15 and max(held) <= 6
