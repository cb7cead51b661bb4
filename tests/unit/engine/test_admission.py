"""A route's slots (engine/admission.py): realtime calls are admitted before batch work."""

from __future__ import annotations

import asyncio
import time

import pytest

from batchd.engine import admission, prefix
from batchd.engine.admission import Slots


async def waiting(slots: Slots, realtime: bool, started: list[str], name: str) -> None:
    await slots.acquire(realtime=realtime)
    started.append(name)


async def test_a_freed_slot_goes_to_the_realtime_call_before_batch_calls_queued_earlier() -> None:
    slots = Slots(2)
    await slots.acquire()
    await slots.acquire()
    started: list[str] = []
    batch = [asyncio.create_task(waiting(slots, False, started, f"b{i}")) for i in range(3)]
    await asyncio.sleep(0)
    realtime = asyncio.create_task(waiting(slots, True, started, "rt"))
    await asyncio.sleep(0)
    assert slots.waiting == (1, 3) and slots.locked()
    slots.release()
    await asyncio.sleep(0)
    assert started == ["rt"]
    slots.release()
    slots.release(realtime=True)
    await asyncio.sleep(0)
    # One slot stays left to realtime calls now that one came (RealtimeDemand), so one batch call runs.
    assert started == ["rt", "b0"]
    slots.release()
    await asyncio.sleep(0)
    assert started == ["rt", "b0", "b1"]  # batch calls keep their own order
    slots.release()
    await asyncio.gather(realtime, *batch)
    assert started[-1] == "b2"


async def test_a_reserve_is_left_to_realtime_calls() -> None:
    slots = Slots(3, reserve=1)
    await slots.acquire()
    await slots.acquire()
    assert slots.locked()  # the third slot is the reserve: batch work waits
    started: list[str] = []
    batch = asyncio.create_task(waiting(slots, False, started, "b"))
    await asyncio.sleep(0)
    await asyncio.wait_for(slots.acquire(realtime=True), 1)  # at once
    assert started == [] and slots.free == 0
    slots.release(realtime=True)  # the realtime call ends: the reserve is free again, not the batch's
    await asyncio.sleep(0)
    assert started == []
    slots.release()
    await batch
    assert started == ["b"]


async def test_room_is_left_for_as_many_realtime_calls_as_came_lately_then_given_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slots = Slots(8)
    for _ in range(6):
        await slots.acquire()
    async with slots.hold(realtime=True), slots.hold(realtime=True):
        assert slots.locked()  # two realtime calls at once: their two slots are theirs
    assert slots.locked()  # and stay left to them while batch work holds six
    assert slots.demand.kept() == 2
    clock = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: clock + admission.DEMAND_MEMORY + 1)
    assert slots.demand.kept() == 0  # none since: batch work has every slot again


async def test_a_waiter_cancelled_gives_its_place_back() -> None:
    slots = Slots(1)
    await slots.acquire()
    started: list[str] = []
    gone = asyncio.create_task(waiting(slots, True, started, "gone"))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    batch = asyncio.create_task(waiting(slots, False, started, "b"))
    await asyncio.sleep(0)
    slots.release()
    await batch
    assert started == ["b"] and slots.free == 0


async def test_the_prefix_scheduler_admits_realtime_calls_first() -> None:
    scheduler = prefix.PrefixScheduler(1)
    busy = {"messages": [{"role": "user", "content": "x"}]}
    hold = scheduler.slot(busy)
    await hold.__aenter__()
    started: list[str] = []

    async def call(name: str, realtime: bool) -> None:
        async with scheduler.slot({"system": name, "messages": []}, realtime=realtime):
            started.append(name)

    batch = [asyncio.create_task(call(f"b{i}", False)) for i in range(2)]
    await asyncio.sleep(0)
    realtime = asyncio.create_task(call("rt", True))
    await asyncio.sleep(0)
    await hold.__aexit__(None, None, None)
    await asyncio.gather(realtime, *batch)
    assert started[0] == "rt"
