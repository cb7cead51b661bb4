"""The dispatcher on a real SQLite store with scripted backends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import pytest

from batchd import exceptions, models
from batchd.backends.simulator import SimulatedBackend
from batchd.engine import Dispatcher, prefix
from batchd.engine.admission import Slots
from batchd.engine.router import Route, Router
from batchd.store import base
from batchd.store.sqlite import SQLiteStore
from tests.unit.engine import harness


def texts(*words: str) -> list[bytes]:
    return [harness.ask(w) for w in words]


async def test_retries_transient_errors_then_succeeds(store: SQLiteStore) -> None:
    async def flaky(text: str, attempt: int) -> dict[str, Any]:
        if attempt < 3:
            raise exceptions.BackendError("busy", status=529, error_type="overloaded_error", retryable=True)
        return harness.message(text)

    backend = harness.Scripted(flaky)
    run = await harness.run_batch(store, backend, texts("a"), retry_base="1ms", retry_max="5ms")
    assert run.results["r0"]["type"] == "succeeded"
    assert backend.calls == [("a", 1), ("a", 2), ("a", 3)]


async def test_gives_up_after_max_attempts_with_the_upstream_error(store: SQLiteStore) -> None:
    async def always(text: str, attempt: int) -> dict[str, Any]:
        raise exceptions.BackendError(
            "slow down", status=429, error_type="rate_limit_error", retryable=True, retry_after=0.001
        )

    backend = harness.Scripted(always)
    run = await harness.run_batch(store, backend, texts("a"), max_attempts="4")
    assert len(backend.calls) == 4
    assert run.results["r0"]["error"]["error"] == {"type": "rate_limit_error", "message": "slow down"}


async def test_final_errors_are_not_retried(store: SQLiteStore) -> None:
    async def final(text: str, attempt: int) -> dict[str, Any]:
        raise exceptions.BackendError("no", status=400, error_type="invalid_request_error")

    backend = harness.Scripted(final)
    run = await harness.run_batch(store, backend, texts("a"))
    assert len(backend.calls) == 1 and run.results["r0"]["type"] == "errored"


async def test_an_unexpected_exception_is_an_internal_error_and_logged(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(text: str, attempt: int) -> dict[str, Any]:
        raise KeyError("usage")

    run = await harness.run_batch(store, harness.Scripted(broken), texts("a"), max_attempts="3")
    error = run.results["r0"]["error"]["error"]
    assert error == {"type": "api_error", "message": "Internal error: 'usage'"}
    assert "request" in caplog.text and "KeyError" in caplog.text  # with its traceback


async def test_call_timeout_is_a_retryable_timeout_error(store: SQLiteStore) -> None:
    async def hang_first(text: str, attempt: int) -> dict[str, Any]:
        if attempt == 1:
            await asyncio.sleep(30)
        return harness.message(text)

    backend = harness.Scripted(hang_first)
    run = await harness.run_batch(store, backend, texts("a", "b"), request_timeout="200ms", retry_base="1ms")
    assert {r["type"] for r in run.results.values()} == {"succeeded"}
    assert sorted(backend.calls) == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]

    async def hang(text: str, attempt: int) -> dict[str, Any]:
        await asyncio.sleep(30)
        return harness.message(text)

    run = await harness.run_batch(
        store, harness.Scripted(hang), texts("c"), request_timeout="100ms", retry_base="1ms", max_attempts="2"
    )
    assert run.results["r0"]["error"]["error"]["type"] == "timeout_error"


async def test_a_wait_in_the_prefix_scheduler_does_not_count_toward_the_call_timeout(
    store: SQLiteStore,
) -> None:
    async def slow(text: str, attempt: int) -> dict[str, Any]:
        await asyncio.sleep(0.15)
        return harness.message(text)

    # One engine slot, one prefix: the calls run one after another, the last after ~0.45 s of
    # waiting, longer than the 0.3 s timeout each call has once it runs.
    engine = harness.Scripted(slow)
    words = ["a", "b", "c", "d"]
    scheduled = Route(engine, Slots(16), scheduler=prefix.PrefixScheduler(1))
    run = await harness.run_batch(store, scheduled, texts(*words), request_timeout="300ms", max_attempts="1")
    assert {cid: r["type"] for cid, r in run.results.items()} == {f"r{i}": "succeeded" for i in range(4)}
    assert sorted(engine.calls) == [(t, 1) for t in words]
    # The latency metric leaves the wait out too: ~4 × 0.15 s, not 0.15 + 0.3 + 0.45 + 0.6 s.
    total = run.metrics.registry.get_sample_value("batchd_backend_latency_seconds_sum", {"model": "m"})
    assert total is not None and 0.55 < total < 1.0, total


class SlowCommits(SQLiteStore):
    commit_interval = 5.0


async def test_the_last_results_are_written_without_waiting_for_company(new_store: harness.NewStore) -> None:
    async def ok(text: str, attempt: int) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return harness.message(text)

    # Results wait up to commit_interval to share a commit, but once nothing is left to run they
    # are written at once: the batch ends long before the 5 s interval is up.
    store = await new_store(SlowCommits)
    run = await harness.run_batch(store, harness.Scripted(ok), texts("a", "b", "c"), timeout=2)
    assert {r["type"] for r in run.results.values()} == {"succeeded"}


async def test_invalid_params_do_not_reach_the_backend(store: SQLiteStore) -> None:
    async def ok(text: str, attempt: int) -> dict[str, Any]:
        return harness.message(text)

    backend = harness.Scripted(ok)
    run = await harness.run_batch(
        store, Route(backend, Slots(4)), [b'{"model": "m", "messages": []}', harness.SIMPLE]
    )
    assert backend.calls == [("x", 1)]
    assert run.batch.request_counts == models.RequestCounts(succeeded=1, errored=1)


async def test_concurrency_is_bounded(store: SQLiteStore) -> None:
    running_now = 0
    peak = 0

    async def slow(text: str, attempt: int) -> dict[str, Any]:
        nonlocal running_now, peak
        running_now += 1
        peak = max(peak, running_now)
        await asyncio.sleep(0.01)
        running_now -= 1
        return harness.message(text)

    run = await harness.run_batch(
        store, harness.Scripted(slow), texts(*(str(i) for i in range(60))), concurrency="7", claim_chunk="3"
    )
    assert len(run.results) == 60
    assert peak == 7


class FleetSlots(SQLiteStore):
    """The SQLite store with fleet-wide slots as PostgreSQL has, scripted: the first wait times out."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.held: list[base.Slot] = []
        self.events: list[str] = []
        self.fleet_slots = self  # its own (scripted) fleet slots: acquire and release below

    async def acquire(self, name: str, limit: int, *, deadline: float) -> base.Slot:
        assert (name, limit) == ("m", 2) and deadline > time.monotonic()
        self.events.append("wait")
        if self.events.count("wait") == 1:  # a full fleet: the first try times out, its retry gets a slot
            raise TimeoutError
        self.held.append(base.Slot(route=name, number=0, session=0))
        self.events.append("acquire")
        return self.held[-1]

    async def release(self, slot: base.Slot) -> None:
        self.held.remove(slot)
        self.events.append("release")


async def test_fleet_limited_routes_call_inside_a_store_slot(new_store: harness.NewStore) -> None:
    store = await new_store(FleetSlots)

    async def answer(text: str, attempt: int) -> dict[str, Any]:
        assert len(store.held) == 1
        store.events.append("call")
        return harness.message(text)

    routes, retry_base = '[{"model": "m", "fleet_concurrency": 2}]', "0.1s"
    router = Router.from_settings(harness.settings_of(routes=routes))
    backend = harness.Scripted(answer)
    router.routes[0].backend = backend
    try:
        run = await harness.run_batch(store, router, [harness.SIMPLE], routes=routes, retry_base=retry_base)
    finally:
        await router.aclose()
    assert run.batch.request_counts.succeeded == 1
    assert store.events == ["wait", "wait", "acquire", "call", "release"] and not store.held
    assert backend.calls == [("x", 2)]  # the slot timeout was a retryable error, then it ran


async def test_requests_abandoned_by_crashed_workers_are_errored(store: SQLiteStore) -> None:
    batch = await harness.make_batch(store, [harness.SIMPLE])
    now = batch.created_at
    for _ in range(2):  # two workers claim it and die
        assert await store.claim_requests("dead", 10, now=now, lease=1)
        await store.recover_leases(now=now, everything=True)

    async def ok(text: str, attempt: int) -> dict[str, Any]:
        return harness.message(text)

    backend = harness.Scripted(ok)
    async with harness.running(store, Route(backend, Slots(4)), harness.settings_of(max_claims="2")):
        ended = await harness.until_ended(store, batch.id)
    assert backend.calls == []
    assert ended.request_counts.errored == 1


async def test_stop_leaves_unfinished_work_for_the_next_start(store: SQLiteStore) -> None:
    async def slow(text: str, attempt: int) -> dict[str, Any]:
        await asyncio.sleep(30)
        return harness.message(text)

    batch = await harness.make_batch(store, [harness.SIMPLE])
    engine = Dispatcher(harness.settings_of(), store, Router(Route(harness.Scripted(slow), Slots(4))))
    await engine.start()
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await engine.stop(grace=0.1)
    assert time.monotonic() - started < 2
    assert (await store.get_batch("default", batch.id)).request_counts.processing == 1
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

    async def create_message(
        self, params: dict[str, Any], *, attempt: int = 1, betas: Sequence[str] = ()
    ) -> dict[str, Any]:
        self.awaited.append(attempt)
        message, pause = super().answer(params, attempt=attempt)  # as the simulator's own, uncounted
        if pause > 0:
            await asyncio.sleep(pause)
        return message


async def test_an_instant_backend_is_answered_in_line_with_the_task_path_s_results(
    store: SQLiteStore,
) -> None:
    params = [harness.ask(f"question {i}") for i in range(50)]
    inline = CountingSimulator()
    first = await harness.run_batch(store, inline, params)
    assert first.batch.request_counts.succeeded == 50
    assert len(inline.answered) == 50 and inline.awaited == []

    # The same simulator behind a latency (never in line) gives the very same results.
    delayed = CountingSimulator(latency=0.001)
    second = await harness.run_batch(store, delayed, params)
    assert len(delayed.awaited) == 50
    assert first.results == second.results and {r["type"] for r in first.results.values()} == {"succeeded"}


async def test_in_line_outcomes_keep_retries_delays_and_errors(store: SQLiteStore) -> None:
    backend = CountingSimulator()
    params = [
        harness.ask("plain"),
        harness.ask("@sim:fail=529x2 then fine"),
        harness.ask("@sim:error=invalid_request"),
        harness.ask("@sim:delay=0.05 slow"),
        harness.ask("@sim:fail=429"),
        b'{"model": "m", "messages": []}',
    ]
    run = await harness.run_batch(store, backend, params, retry_base="1ms", retry_max="5ms", max_attempts="3")
    assert run.batch.request_counts == models.RequestCounts(succeeded=3, errored=3)
    results = run.results
    assert [results[f"r{i}"]["type"] for i in range(6)] == [
        "succeeded", "succeeded", "errored", "succeeded", "errored", "errored",
    ]  # fmt: skip
    assert results["r2"]["error"]["error"]["type"] == "invalid_request_error"
    assert results["r4"]["error"]["error"]["type"] == "rate_limit_error"
    assert results["r5"]["error"]["error"]["message"] == "max_tokens: Field required"
    # Attempt 1 of every valid request in line; the retries and the delayed request in tasks.
    assert backend.answered == [1, 1, 1, 1, 1]
    assert sorted(backend.awaited) == [1, 2, 2, 3, 3]
    registry = run.metrics.registry
    assert registry.get_sample_value("batchd_retries_total", {"error_type": "overloaded_error"}) == 2
    assert registry.get_sample_value("batchd_retries_total", {"error_type": "rate_limit_error"}) == 2
    assert registry.get_sample_value("batchd_requests_total", {"result": "succeeded", "model": "m"}) == 3
    # Every call but the in-line one that found a delay to wait (its task's call counts).
    assert registry.get_sample_value("batchd_backend_latency_seconds_count", {"model": "m"}) == 9


async def test_a_full_route_is_not_overtaken_in_line(store: SQLiteStore) -> None:
    backend = CountingSimulator()
    limit = Slots(1)
    await limit.acquire()  # the route's one slot is taken: requests must wait for it in tasks
    batch = await harness.make_batch(store, [harness.ask("a"), harness.ask("b")])
    async with harness.running(store, Route(backend, limit), harness.settings_of()) as engine:
        await asyncio.sleep(0.2)
        assert backend.answered == [] and backend.awaited == []
        assert engine.inflight == 2
        limit.release()
        await harness.until_ended(store, batch.id)
    assert backend.answered == [] and backend.awaited == [1, 1]


async def test_a_prefix_scheduled_route_is_not_answered_in_line(store: SQLiteStore) -> None:
    backend = CountingSimulator()
    route = Route(backend, Slots(16), scheduler=prefix.PrefixScheduler(2))
    run = await harness.run_batch(store, route, [harness.ask("a"), harness.ask("b"), harness.ask("c")])
    assert run.batch.request_counts.succeeded == 3
    assert backend.answered == [] and backend.awaited == [1, 1, 1]  # every call admitted by the scheduler
    assert route.scheduler is not None and route.scheduler.free == 2


class WatchedClaims(SQLiteStore):
    """Records, at each claim, what it may bring plus what `engine` holds unsettled."""

    engine: Dispatcher | None = None

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.held: list[int] = []

    async def claim_requests(
        self, worker_id: str, limit: int, *, now: float, lease: float
    ) -> list[models.ClaimedRequest]:
        assert self.engine is not None
        self.held.append(limit + self.engine.claimed)
        return await super().claim_requests(worker_id, limit, now=now, lease=lease)


async def test_claims_never_exceed_the_free_capacity(new_store: harness.NewStore) -> None:
    async def slow(text: str, attempt: int) -> dict[str, Any]:
        await asyncio.sleep(0.005)
        return harness.message(text)

    store = await new_store(WatchedClaims)
    settings = harness.settings_of(concurrency="6", claim_chunk="4")
    batch = await harness.make_batch(store, [harness.SIMPLE] * 60)
    store.engine = Dispatcher(settings, store, Router(Route(harness.Scripted(slow), Slots(6))))
    await store.engine.start()
    try:
        got = await harness.until_ended(store, batch.id)
    finally:
        await store.engine.stop()
    assert got.request_counts.succeeded == 60
    assert len(store.held) >= 15 and max(store.held) <= 6
