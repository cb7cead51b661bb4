"""The engine survives errors its store did not translate: nothing stops claiming or writing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from batchd import config, exceptions
from batchd.engine import Dispatcher, dispatcher
from batchd.engine.router import Route, Router
from batchd.store import Store
from tests.unit.engine.test_dispatcher import (  # noqa: F401 - store is a fixture
    SIMPLE,
    Scripted,
    make_batch,
    message,
    run_batch,
    store,
)


class Untranslated(Exception):
    """Stands in for a driver error the store let through (as asyncpg's InternalClientError was)."""


def fail_once(store: Store, method: str) -> list[int]:  # noqa: F811
    """Makes `store.<method>` raise Untranslated on its first call; returns the call counter."""
    real = getattr(store, method)
    calls = [0]

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise Untranslated("cannot switch to state 15; another operation (2) is in progress")
        return await real(*args, **kwargs)

    setattr(store, method, flaky)
    return calls


async def answer(text: str, attempt: int) -> dict[str, Any]:
    return message(text)


@pytest.mark.parametrize("method", ["complete_requests", "claim_requests", "heartbeat"])
async def test_an_untranslated_store_error_does_not_stop_the_engine(
    store: Store,  # noqa: F811
    method: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = fail_once(store, method)
    texts = [f"t{i}" for i in range(80)]
    # A lease short enough that heartbeats run during the batch; a slow answer so they do.
    backend = Scripted(lambda text, attempt: asyncio.sleep(0.05, message(text)))
    results = await run_batch(store, backend, texts, lease="0.3s", concurrency="4")
    assert calls[0] >= 2, f"{method} was not called again after it failed"
    assert sorted(results) == sorted(f"r{i}" for i in range(80))
    assert all(r["type"] == "succeeded" for r in results.values())
    assert "Untranslated" in caplog.text  # logged with its traceback, not swallowed


async def test_stop_gives_up_writing_to_a_store_that_stays_down(
    store: Store,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM while the database is down: the process exits; the unwritten requests run again later."""
    monkeypatch.setattr(dispatcher, "STOP_FLUSH", 0.3)
    batch = await make_batch(store, [SIMPLE] * 3)
    settings = config.load(environ={})
    engine = Dispatcher(settings, store, Router(Route(Scripted(answer), asyncio.Semaphore(4))))

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise exceptions.StoreUnavailable("the database is unavailable: connection refused")

    store.complete_requests = down  # type: ignore[method-assign]
    await engine.start()
    await asyncio.sleep(0.2)  # answered, but nothing can be written
    await asyncio.wait_for(engine.stop(), 5)
    got = await store.get_batch("default", batch.id)
    assert got.request_counts.processing == 3  # nothing written, nothing lost: leases will lapse
