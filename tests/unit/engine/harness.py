"""The engine's test harness: scripted backends, batches on a real store, one way to run them.

The fixtures that open stores are in conftest.py beside this module; a test imports from here
what it calls by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import orjson

from batchd import config, models
from batchd.backends.base import Backend, InstantAnswer
from batchd.config.routes import BackendKind
from batchd.engine import Dispatcher
from batchd.engine.admission import Slots
from batchd.engine.router import Route, Router
from batchd.metrics import Metrics
from batchd.store import Store
from batchd.store.sqlite import SQLiteStore

WS = "default"
SIMPLE = b'{"model": "m", "max_tokens": 3, "messages": [{"role": "user", "content": "x"}]}'

StoreT = TypeVar("StoreT", bound=SQLiteStore)


class NewStore(Protocol):
    """The `new_store` fixture: opens a SQLite store of class `cls` (a subclass for a seam)."""

    async def __call__(self, cls: type[StoreT], /) -> StoreT: ...


Behaviour = Callable[[str, int], Awaitable[dict[str, Any]]]


class Scripted:
    """A backend whose behaviour per attempt is an async function of (text, attempt)."""

    kind = BackendKind.SIMULATED  # a stand-in for a model
    instant: InstantAnswer | None = None  # awaited, never answered in line

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.calls: list[tuple[str, int]] = []

    async def create_message(
        self, params: dict[str, Any], *, attempt: int = 1, betas: Sequence[str] = ()
    ) -> dict[str, Any]:
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


def ask(text: str, **extra: Any) -> bytes:
    """The params of a one-message request to model `m`."""
    return orjson.dumps(
        {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": text}], **extra}
    )


def settings_of(**env: str) -> config.Settings:
    """Settings from BATCHD_* values given by name: retry_base="1ms" is BATCHD_RETRY_BASE=1ms."""
    return config.load(environ={f"BATCHD_{k.upper()}": v for k, v in env.items()})


async def make_batch(store: Store, params: Sequence[bytes]) -> models.Batch:
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


async def results_of(store: Store, batch_id: str) -> dict[str, Any]:
    """custom_id -> the `result` of its results line."""
    out = {}
    async for chunk in store.iter_results(WS, batch_id):
        for line in chunk.splitlines():
            row = orjson.loads(line)
            out[row["custom_id"]] = row["result"]
    return out


def router_for(target: Backend | Route | Router, settings: config.Settings) -> Router:
    """A backend gets a route of its own, as wide as the engine; a route becomes the default."""
    if isinstance(target, Router):
        return target
    if isinstance(target, Route):
        return Router(target)
    return Router(Route(target, Slots(settings.concurrency)))


@contextlib.asynccontextmanager
async def running(
    store: Store,
    target: Backend | Route | Router,
    settings: config.Settings,
    metrics: Metrics | None = None,
) -> AsyncIterator[Dispatcher]:
    """A started dispatcher on `target`, stopped on the way out."""
    engine = Dispatcher(settings, store, router_for(target, settings), metrics=metrics)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


@dataclasses.dataclass
class Run:
    batch: models.Batch  #: as it ended
    results: dict[str, Any]  #: custom_id -> result
    metrics: Metrics


async def run_batch(
    store: Store,
    target: Backend | Route | Router,
    params: Sequence[bytes],
    *,
    timeout: float = 10,
    **env: str,
) -> Run:
    """Runs one batch of `params` to its end on a dispatcher with settings from `env`."""
    settings = settings_of(**env)
    batch = await make_batch(store, params)
    metrics = Metrics()
    async with running(store, target, settings, metrics):
        ended = await until_ended(store, batch.id, timeout)
    return Run(ended, await results_of(store, batch.id), metrics)
