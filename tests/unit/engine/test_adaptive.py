"""Adaptive concurrency (engine/adaptive.py): a route's batch limit learnt from its upstream.

The limit is driven here by a clock of our own and latencies given, so every step is exact."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from batchd import config, exceptions
from batchd.engine import adaptive, prefix
from batchd.engine.adaptive import WINDOW, AdaptiveLimit
from batchd.engine.admission import Slots
from batchd.engine.router import Router
from batchd.metrics import Metrics


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def skip(self, seconds: float) -> None:
        self.t += seconds

    def __call__(self) -> float:
        self.t += 0.001  # every reading a little later: calls started now start after any change
        return self.t


def window(limit: AdaptiveLimit, seconds: float, *, pressed: bool = True) -> None:
    """One full window of batch calls, each started now, each taking `seconds`."""
    for _ in range(max(WINDOW, limit.limit)):
        limit.succeeded(limit.now(), seconds, pressed)


def test_it_starts_at_the_floor_and_grows_while_latency_stays_near_the_baseline() -> None:
    limit = AdaptiveLimit(16, floor=1, tolerance=1.5, clock=Clock())
    assert limit.limit == 1
    window(limit, 0.1)
    assert limit.baseline == pytest.approx(0.1)
    seen = [limit.limit]
    for _ in range(10):
        window(limit, 0.1)
        seen.append(limit.limit)
    assert seen == sorted(seen) and seen[-1] == 16  # grows, and never past the route's concurrency


def test_it_settles_where_latency_reaches_the_tolerance() -> None:
    """An upstream whose latency grows with the calls in flight past 4: the limit settles near the
    point where calls take `tolerance` × the idle latency, and never far above it."""
    limit = AdaptiveLimit(64, tolerance=1.5, clock=Clock())

    def latency(n: int) -> float:
        return 0.1 * max(1.0, n / 4)  # 4 calls fit side by side; more queue

    seen = []
    for _ in range(40):
        window(limit, latency(limit.limit))
        seen.append(limit.limit)
    assert max(seen[10:]) <= 8 and min(seen[10:]) >= 4, seen  # 1.5 × 0.1 s is reached at 6


def test_a_limit_nothing_presses_against_does_not_grow() -> None:
    limit = AdaptiveLimit(16, clock=Clock())
    for _ in range(5):
        window(limit, 0.1, pressed=False)
    assert limit.limit == 1


@pytest.mark.parametrize("status", [429, 503, 529, 504])
def test_an_overload_answer_halves_the_limit_once_per_change(status: int) -> None:
    limit = AdaptiveLimit(32, clock=Clock())
    while limit.limit < 32:
        window(limit, 0.1)
    started = [limit.now() for _ in range(20)]  # 20 calls in flight when the upstream says "enough"
    error = exceptions.BackendError("busy", status=status, retryable=True)
    assert adaptive.overload(error)
    for at in started:
        limit.overloaded(at)
    assert limit.limit == 16 and limit.cuts == 1  # the burst counts once
    limit.overloaded(limit.now())  # a call started since: the overload goes on
    assert limit.limit == 8


def test_timeouts_count_as_overload_other_failures_do_not() -> None:
    assert adaptive.overload(exceptions.BackendTimeout())
    assert adaptive.overload(TimeoutError())
    assert not adaptive.overload(exceptions.BackendError("bad", status=400))
    assert not adaptive.overload(exceptions.BackendError("oops", status=500, retryable=True))
    assert not adaptive.overload(asyncio.CancelledError())


def test_it_never_goes_below_the_floor_and_recovers_when_the_upstream_does() -> None:
    limit = AdaptiveLimit(16, floor=2, clock=Clock())
    for _ in range(10):
        limit.overloaded(limit.now())
    assert limit.limit == 2
    for _ in range(10):
        window(limit, 0.1)
    assert limit.limit == 16


def test_the_baseline_follows_an_upstream_that_got_slower_for_good() -> None:
    limit = AdaptiveLimit(16, clock=Clock())
    for _ in range(8):
        window(limit, 0.1)
    assert limit.limit == 16
    for _ in range(12):
        window(limit, 1.0)  # ten times slower at any load: down to the floor, which re-measures
    assert limit.baseline == pytest.approx(1.0)
    for _ in range(8):
        window(limit, 1.0)
    assert limit.limit == 16


def test_samples_of_calls_started_before_a_change_are_left_out() -> None:
    limit = AdaptiveLimit(16, clock=Clock())
    early = [limit.now() for _ in range(WINDOW)]
    window(limit, 0.1)  # changes the limit
    before = limit.limit
    for at in early:
        limit.succeeded(at, 10.0, True)  # slow, but started under the old limit
    window(limit, 0.1)
    assert limit.limit > before


async def hold(slots: Slots, realtime: bool, started: list[str], name: str, release: asyncio.Event) -> None:
    async with slots.hold(realtime=realtime):
        started.append(name)
        await release.wait()


async def test_slots_let_batch_work_in_up_to_the_adaptive_limit_and_realtime_calls_past_it() -> None:
    learnt = AdaptiveLimit(8, clock=Clock())
    learnt.limit = 2
    slots = Slots(8, adaptive=learnt)
    release = asyncio.Event()
    started: list[str] = []
    batch = [asyncio.create_task(hold(slots, False, started, f"b{i}", release)) for i in range(5)]
    await asyncio.sleep(0)
    assert started == ["b0", "b1"] and slots.pressed()  # the limit, not the 8 slots
    realtime = [asyncio.create_task(hold(slots, True, started, f"rt{i}", release)) for i in range(3)]
    await asyncio.sleep(0)
    assert started[2:] == ["rt0", "rt1", "rt2"]  # a cut limit holds no realtime call back
    learnt.limit = 8
    release.set()
    await asyncio.gather(*batch, *realtime)
    assert sorted(started) == sorted([f"b{i}" for i in range(5)] + ["rt0", "rt1", "rt2"])


async def test_measured_feeds_the_limit_from_the_calls_admitted() -> None:
    learnt = AdaptiveLimit(8, clock=Clock())
    learnt.limit = 4
    slots = Slots(8, adaptive=learnt)

    async def call(realtime: bool, fail: Exception | None = None) -> None:
        async with adaptive.measured(learnt, slots.hold(realtime=realtime), slots.pressed, realtime=realtime):
            if fail is not None:
                raise fail

    await call(False)
    await call(True)
    assert len(learnt._samples) == 1  # a realtime call's latency is not sampled
    with pytest.raises(exceptions.BackendError):
        await call(True, exceptions.BackendError("slow down", status=429, retryable=True))
    assert learnt.limit == 2 and learnt.cuts == 1  # its overload is
    assert slots.free == 8


@pytest.mark.parametrize("on", [True, False])
async def test_routes_with_an_upstream_learn_their_limit_the_simulator_does_not(on: bool) -> None:
    table = [
        {"model": "up-*", "backend": "anthropic", "base_url": "http://127.0.0.1:9", "concurrency": 12},
        {"model": "sim-*", "backend": "simulated"},
    ]
    env = {"BATCHD_ROUTES": orjson.dumps(table).decode(), "BATCHD_ADAPTIVE_CONCURRENCY": str(on).lower()}
    env["BATCHD_ADAPTIVE_MIN_CONCURRENCY"] = "3"
    metrics = Metrics()
    router = Router.from_settings(config.load(environ=env), metrics=metrics)
    try:
        up, sim = router.routes
        assert sim.adaptive is None and router.default.adaptive is None
        text = metrics.render().decode()
        if on:
            assert up.adaptive is not None and (up.adaptive.floor, up.adaptive.ceiling) == (3, 12)
            # No realtime call yet (adaptive_latency = realtime): batch work has the whole route.
            assert 'batchd_route_concurrency_limit{model="up-*"} 12.0' in text
            assert not up.adaptive.always
        else:
            assert up.adaptive is None and "batchd_route_concurrency_limit{" not in text
    finally:
        await router.aclose()


async def test_the_prefix_scheduler_applies_the_limit_to_batch_calls_only() -> None:
    learnt = AdaptiveLimit(4, clock=Clock())  # at the floor: 1
    scheduler = prefix.PrefixScheduler(4, limit=learnt)
    release = asyncio.Event()
    started: list[str] = []

    async def call(name: str, realtime: bool) -> None:
        async with scheduler.slot({"system": name, "messages": []}, realtime=realtime):
            started.append(name)
            await release.wait()

    tasks = [asyncio.create_task(call(f"b{i}", False)) for i in range(3)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(call("rt", True)))
    await asyncio.sleep(0)
    assert started == ["b0", "rt"] and scheduler.pressed()
    release.set()
    await asyncio.gather(*tasks)
    assert sorted(started) == ["b0", "b1", "b2", "rt"]


def test_without_realtime_calls_batch_work_keeps_the_route_and_only_overload_cuts_it() -> None:
    """adaptive_latency = "realtime" (the default setting): with no realtime call to protect,
    slow batch calls do not shrink the limit; an overload halves it and pressed windows double it
    back to the route's concurrency."""
    limit = AdaptiveLimit(16, tolerance=1.5, latency="realtime", clock=Clock())
    assert limit.limit == 16 and not limit.guarding
    window(limit, 0.1)
    window(limit, 5.0)  # 50× slower: a gradient would cut it to 8
    assert limit.limit == 16
    limit.overloaded(limit.now())
    assert limit.limit == 8
    window(limit, 5.0, pressed=False)
    assert limit.limit == 8  # nothing pressed against it: it stays
    window(limit, 5.0)
    assert limit.limit == 16


def test_a_realtime_call_turns_the_gradient_on_from_the_floor_until_realtime_calls_stop() -> None:
    clock = Clock()
    limit = AdaptiveLimit(16, tolerance=1.5, latency="realtime", clock=clock)
    window(limit, 0.1)
    limit.realtime()
    assert limit.guarding and limit.limit == 1 and limit.baseline is None  # learnt afresh
    window(limit, 0.1)
    assert limit.baseline == pytest.approx(0.1)
    limit.realtime()  # still the same demand: no second reset
    assert limit.limit == 2
    for _ in range(10):
        window(limit, 0.1 * max(1.0, limit.limit / 4))  # 4 calls fit side by side; more queue
    assert 4 <= limit.limit <= 8  # settled where the latency reaches 1.5× idle, as with "always"
    clock.skip(adaptive.DEMAND + 1)  # realtime calls stopped
    assert not limit.guarding
    for _ in range(3):
        window(limit, 5.0)
    assert limit.limit == 16
