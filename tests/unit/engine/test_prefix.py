"""Prefix-aware dispatch: the order of a claimed chunk, and the scheduler that admits a route's calls."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchd import config, models
from batchd.backends.openai import OpenAIBackend
from batchd.backends.simulator import SimulatedBackend
from batchd.config.routes import BackendKind
from batchd.engine import prefix
from batchd.engine.admission import Slots
from batchd.engine.router import Route, Router
from batchd.tools.loop import ToolLoop


def claimed(i: int, **params: Any) -> models.ClaimedRequest:
    body = {"model": "m", "max_tokens": 5, **params}
    return models.ClaimedRequest("msgbatch_x", i, f"r{i}", orjson.dumps(body), 0, 1e12)


def question(system: str, text: str) -> dict[str, Any]:
    return {"system": system, "messages": [{"role": "user", "content": text}]}


def test_dealt_round_robin_by_system() -> None:
    sorted_batch = [claimed(i, **question(f"doc {i // 3}", f"question {i}")) for i in range(9)]
    assert [r.index for r in prefix.order(sorted_batch)] == [0, 3, 6, 1, 4, 7, 2, 5, 8]
    uneven = [claimed(i, **question("a" if i < 4 else "b", str(i))) for i in range(6)]
    assert [r.index for r in prefix.order(uneven)] == [0, 4, 1, 5, 2, 3]


def test_leading_messages_and_blocks_are_the_prefix() -> None:
    doc = {"type": "text", "text": "a long shared document"}
    other = {"type": "text", "text": "another document"}
    reqs = [
        claimed(0, messages=[{"role": "user", "content": [doc, {"type": "text", "text": "q0"}]}]),
        claimed(1, messages=[{"role": "user", "content": [other, {"type": "text", "text": "q1"}]}]),
        claimed(2, messages=[{"role": "user", "content": [doc, {"type": "text", "text": "q2"}]}]),
        claimed(
            3,
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "x"},
                {"role": "user", "content": "q3"},
            ],
        ),
    ]
    assert [r.index for r in prefix.order(reqs)] == [0, 1, 3, 2]  # doc, other, no blocks; then doc again


def test_keys() -> None:
    a = claimed(0, **question("s", "one"))
    b = claimed(1, **question("s", "two"))
    c = claimed(2, tools=[{"name": "t", "input_schema": {}}], **question("s", "one"))
    assert prefix.prefix_key(a.params) == prefix.prefix_key(b.params) != prefix.prefix_key(c.params)
    assert prefix.prefix_key(b"not json") != prefix.prefix_key(b"[1]")


def test_small_or_uniform_chunks_are_left_alone() -> None:
    same = [claimed(i, **question("s", str(i))) for i in range(5)]
    assert prefix.order(same) == same
    distinct = [claimed(i, **question(str(i), "q")) for i in range(5)]
    assert prefix.order(distinct) == distinct


def test_keys_of_parsed_params_match_raw() -> None:
    body = {"model": "m", "max_tokens": 5, **question("s", "one")}
    assert prefix.prefix_key(body) == prefix.prefix_key(orjson.dumps(body))


class Engine:
    """Records the order calls reach it; each call runs until the test finishes it."""

    kind = BackendKind.OPENAI
    instant = None

    def __init__(self) -> None:
        self.running: dict[str, asyncio.Future[None]] = {}
        self.started: list[str] = []

    async def create_message(
        self, params: dict[str, Any], *, attempt: int = 1, betas: Sequence[str] = ()
    ) -> dict[str, Any]:
        cid = params["messages"][-1]["content"]
        self.started.append(cid)
        self.running[cid] = asyncio.get_running_loop().create_future()
        try:
            await self.running[cid]
        finally:
            del self.running[cid]
        return {"id": cid}

    async def finish(self, cid: str, error: bool = False) -> None:
        if error:
            self.running[cid].set_exception(RuntimeError("upstream failed"))
        else:
            self.running[cid].set_result(None)
        await settle()

    async def aclose(self) -> None:
        pass


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def scheduled(engine: Engine, slots: int) -> tuple[Route, prefix.PrefixScheduler]:
    """A route whose calls `slots` engine slots take, prefix by prefix, as with --group-prefixes."""
    scheduler = prefix.PrefixScheduler(slots)
    return Route(engine, Slots(prefix.WINDOW * slots), scheduler=scheduler), scheduler


def call(route: Route, system: str, cid: str) -> asyncio.Task[Any]:
    """A call admitted by the route (its scheduler), then made."""
    params = {"model": "m", **question(system, cid)}

    async def admitted() -> dict[str, Any]:
        async with route.admit(params):
            return await route.backend.create_message(params)

    return asyncio.create_task(admitted())


async def test_a_prefix_leader_runs_alone_then_followers_share_the_slots() -> None:
    engine = Engine()
    route, scheduler = scheduled(engine, slots=4)
    tasks = [call(route, "A", f"a{i}") for i in range(6)]
    await settle()
    assert engine.started == ["a0"]  # the followers wait for the leader to warm the cache
    await engine.finish("a0")
    assert engine.started == ["a0", "a1", "a2", "a3", "a4"]  # one prefix in play: all 4 slots
    await engine.finish("a1")
    assert engine.started[-1] == "a5"
    for cid in ("a2", "a3", "a4", "a5"):
        await engine.finish(cid)
    assert [t.result()["id"] for t in tasks] == [f"a{i}" for i in range(6)]
    assert scheduler.free == 4


async def test_slots_are_shared_among_prefixes_and_a_freed_slot_stays_with_its_prefix() -> None:
    engine = Engine()
    route, scheduler = scheduled(engine, slots=2)
    for system in ("A", "B"):  # warm both
        call(route, system, system.lower() + "0")
        await settle()
        await engine.finish(system.lower() + "0")
    tasks = [call(route, s, f"{s.lower()}{i}") for i in (1, 2, 3) for s in ("A", "B", "C")]
    await settle()
    # Three prefixes in play on two slots: one call each at most.
    assert sorted(engine.started[2:]) == ["a1", "b1"]
    await engine.finish("a1")
    assert engine.started[-1] == "a2"  # the slot A just left still holds A's prompt
    await engine.finish("b1")
    assert engine.started[-1] == "b2"
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await settle()
    assert scheduler.free == 2 and not scheduler._in_play


async def test_a_failed_leader_hands_over_to_the_next() -> None:
    engine = Engine()
    route, _ = scheduled(engine, slots=3)
    first, second, third = call(route, "A", "a0"), call(route, "A", "a1"), call(route, "A", "a2")
    await settle()
    await engine.finish("a0", error=True)
    with pytest.raises(RuntimeError):
        await first
    assert engine.started == ["a0", "a1"]  # not warmed: the next request leads, alone
    await engine.finish("a1")
    await engine.finish("a2")
    assert (await second)["id"] == "a1" and (await third)["id"] == "a2"


async def test_cancelled_waiters_and_callers_give_their_place_back() -> None:
    engine = Engine()
    route, scheduler = scheduled(engine, slots=1)
    running = call(route, "A", "a0")
    waiting = [call(route, "B", "b0"), call(route, "C", "c0")]
    await settle()
    waiting[0].cancel()
    await settle()
    running.cancel()  # the watchdog's timeout, say
    await settle()
    assert engine.started == ["a0", "c0"]
    await engine.finish("c0")
    assert (await waiting[1])["id"] == "c0"
    assert scheduler.free == 1 and not scheduler._in_play


async def test_group_prefixes_puts_engine_routes_behind_a_scheduler(tmp_path: Path) -> None:
    path = tmp_path / "batchd.toml"
    path.write_text(
        "[batchd]\nconcurrency = 1000\ngroup_prefixes = true\n"
        '[[routes]]\nmodel = "vllm-*"\nbackend = "openai"\nbase_url = "http://127.0.0.1:8000/v1"\n'
        "concurrency = 8\n"
        '[[routes]]\nmodel = "sim-*"\n'
    )
    router = Router.from_settings(config.load(config_file=str(path), environ={}))
    try:
        engine = router.route("vllm-x")
        assert isinstance(engine.backend, ToolLoop) and isinstance(engine.backend.inner, OpenAIBackend)
        assert engine.scheduler is not None
        assert engine.scheduler.slots == 8  # the route's own concurrency: its slots
        assert engine.limit.limit == 16 * 8  # the calls let through to choose from
        for model in ("sim-x", "other"):
            route = router.route(model)
            assert isinstance(route.backend, SimulatedBackend) and route.scheduler is None
    finally:
        await router.aclose()
