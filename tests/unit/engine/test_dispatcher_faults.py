"""The engine survives errors its store did not translate: nothing stops claiming or writing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from batchd import exceptions, models
from batchd.engine import Dispatcher, dispatcher
from batchd.engine.admission import Slots
from batchd.engine.router import Route, Router
from batchd.store.sqlite import SQLiteStore
from tests.unit.engine import harness


class Untranslated(Exception):
    """Stands in for a driver error the store let through (as asyncpg's InternalClientError was)."""


class FailsOnce(SQLiteStore):
    """The SQLite store whose `failing` method raises Untranslated on its first call."""

    failing = ""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.calls = 0

    def _call(self, method: str) -> None:
        if method == self.failing:
            self.calls += 1
            if self.calls == 1:
                raise Untranslated("cannot switch to state 15; another operation (2) is in progress")

    async def complete_requests(self, outcomes: Sequence[models.Outcome], *, now: float) -> int:
        self._call("complete_requests")
        return await super().complete_requests(outcomes, now=now)

    async def claim_requests(
        self, worker_id: str, limit: int, *, now: float, lease: float
    ) -> list[models.ClaimedRequest]:
        self._call("claim_requests")
        return await super().claim_requests(worker_id, limit, now=now, lease=lease)

    async def heartbeat(self, worker_id: str, keys: Sequence[int], *, now: float, lease: float) -> int:
        self._call("heartbeat")
        return await super().heartbeat(worker_id, keys, now=now, lease=lease)


async def answer(text: str, attempt: int) -> dict[str, Any]:
    return harness.message(text)


@pytest.mark.parametrize("method", ["complete_requests", "claim_requests", "heartbeat"])
async def test_an_untranslated_store_error_does_not_stop_the_engine(
    new_store: harness.NewStore, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = await new_store(FailsOnce)
    store.failing = method
    params = [harness.ask(f"t{i}") for i in range(80)]
    # A lease short enough that heartbeats run during the batch; a slow answer so they do.
    backend = harness.Scripted(lambda text, attempt: asyncio.sleep(0.05, harness.message(text)))
    run = await harness.run_batch(store, backend, params, lease="0.3s", concurrency="4")
    assert store.calls >= 2, f"{method} was not called again after it failed"
    assert sorted(run.results) == sorted(f"r{i}" for i in range(80))
    assert all(r["type"] == "succeeded" for r in run.results.values())
    assert "Untranslated" in caplog.text  # logged with its traceback, not swallowed


class Down(SQLiteStore):
    """The SQLite store with its database gone for writing results."""

    async def complete_requests(self, outcomes: Sequence[models.Outcome], *, now: float) -> int:
        raise exceptions.StoreUnavailable("the database is unavailable: connection refused")


async def test_stop_gives_up_writing_to_a_store_that_stays_down(
    new_store: harness.NewStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM while the database is down: the process exits; the unwritten requests run again later."""
    monkeypatch.setattr(dispatcher, "STOP_FLUSH", 0.3)
    store = await new_store(Down)
    batch = await harness.make_batch(store, [harness.SIMPLE] * 3)
    engine = Dispatcher(harness.settings_of(), store, Router(Route(harness.Scripted(answer), Slots(4))))
    await engine.start()
    await asyncio.sleep(0.2)  # answered, but nothing can be written
    await asyncio.wait_for(engine.stop(), 5)
    got = await store.get_batch("default", batch.id)
    assert got.request_counts.processing == 3  # nothing written, nothing lost: leases will lapse
