"""Shared seams of the acceptance tests: real `batchd` processes, SDK clients, a PostgreSQL
database per test, a fake upstream per module, the batch-request factory, and the checks of the
durability tests (counts add up, no written result changes after a crash).

Fixtures are found by pytest; the plain functions and constants are imported by test modules.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import anthropic
import asyncpg
import pytest

from tests.acceptance.server import ServerProcess, WorkerProcess
from tests.integration import pg
from tests.integration.backends_upstream import Upstream

MODEL = "claude-sonnet-4-5-20250929"

# A fleet (one `batchd serve`, workers) that a batch outlives while processes are killed.
FLEET_ENV = {
    "BATCHD_CONCURRENCY": "32",
    "BATCHD_SIM_LATENCY": "100ms",  # ~1,000 req/s for three processes: the batch outlives the kills
    "BATCHD_LEASE": "2s",  # a killed process's work returns to pending quickly
    "BATCHD_MAINTENANCE_INTERVAL": "0.5s",
}


def simple_request(custom_id: str, text: str = "Hello there", **params: object) -> dict[str, object]:
    """One request of a batch: `text` as the user message; `params` add or replace fields."""
    return {
        "custom_id": custom_id,
        "params": {
            "model": MODEL,
            "max_tokens": 256,
            "messages": [{"role": "user", "content": text}],
            **params,
        },
    }


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One shared server for tests that do not need special settings."""
    proc = ServerProcess(tmp_path_factory.mktemp("batchd-shared")).start()
    yield proc
    proc.stop()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """`make(**settings)`: a server of its own, settings as env (`sim_latency="10ms"`); stopped after."""
    started: list[ServerProcess] = []

    def make(**env: str) -> ServerProcess:
        proc = ServerProcess(
            tmp_path / f"data{len(started)}", {f"BATCHD_{k.upper()}": v for k, v in env.items()}
        )
        started.append(proc.start())
        return proc

    yield make
    for proc in started:
        proc.stop()


def make_client(base_url: str, **kwargs: object) -> anthropic.Anthropic:
    """The official SDK, validating every response strictly and never retrying."""
    return anthropic.Anthropic(
        base_url=base_url, api_key="test-key", _strict_response_validation=True, max_retries=0, **kwargs
    )


@pytest.fixture
def client(server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    with make_client(server.base_url) as c:
        yield c


@pytest.fixture
async def aclient(server: ServerProcess) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=server.base_url, api_key="test-key", _strict_response_validation=True, max_retries=0
    ) as c:
        yield c


@pytest.fixture
def database() -> Iterator[str]:
    """The URL of a PostgreSQL database of this test's own (skipped without a server)."""
    name, url = pg.create_database_sync()
    yield url
    pg.drop_database_sync(name)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    """A fault-injecting upstream for the module's tests (its `calls` accumulate across them)."""
    up = Upstream().start()
    yield up
    up.stop()


def total(batch: Any) -> int:
    """The sum of a batch's request counts."""
    c = batch.request_counts
    return int(c.processing + c.succeeded + c.errored + c.canceled + c.expired)


def wait_ended(client: anthropic.Anthropic, batch_id: str, expected: int, timeout: float = 30.0) -> Any:
    """Polls until the batch ends, checking at every observation that the counts add up."""
    deadline = time.monotonic() + timeout
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        assert total(batch) == expected, batch
        if batch.processing_status == "ended":
            return batch
        assert time.monotonic() < deadline, f"batch {batch_id} did not end: {batch}"
        time.sleep(0.05)


def wait_progress(base_url: str, batch_id: str, timeout: float = 60.0, *, more_than: int = 0) -> None:
    """Waits until more than `more_than` results are written, so a crash lands mid-batch even under load."""
    deadline = time.monotonic() + timeout
    with make_client(base_url) as client:
        while client.messages.batches.retrieve(batch_id).request_counts.succeeded <= more_than:
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.05)


def results_in_sqlite(srv: ServerProcess) -> dict[int, bytes]:
    """The result lines written so far in a server's SQLite file, by request key."""
    conn = sqlite3.connect(f"file:{srv.data_dir / 'batchd.db'}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT key, line FROM results").fetchall())
    finally:
        conn.close()


def results_in_postgres(url: str) -> dict[int, bytes]:
    """The result lines written so far in a PostgreSQL database, by request key."""

    async def fetch() -> dict[int, bytes]:
        conn = await asyncpg.connect(url)
        try:
            return dict(await conn.fetch("SELECT key, line FROM results"))  # type: ignore[arg-type]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def kill_9_at_random(
    processes: Sequence[ServerProcess | WorkerProcess],
    base_url: str,
    batch_id: str,
    n: int,
    kills: int,
    written: Callable[[], dict[int, bytes]],
) -> list[dict[int, bytes]]:
    """`kill -9` one of `processes` at `kills` random moments, each restarted at once; the results
    written at each kill (`written()`), for `assert_recovered`. The counts add up after every restart."""
    rng = random.Random()
    snapshots: list[dict[int, bytes]] = []
    for _ in range(kills):
        time.sleep(rng.uniform(0.2, 1.0))
        victim = rng.choice(processes)
        victim.kill9()
        snapshots.append(written())
        assert len(snapshots[-1]) < n, "the batch ended before every kill landed: make it longer"
        victim.start()
        with make_client(base_url) as client:
            assert total(client.messages.batches.retrieve(batch_id)) == n  # counts add up
    return snapshots


def assert_recovered(
    base_url: str,
    batch_id: str,
    n: int,
    snapshots: list[dict[int, bytes]],
    final: Callable[[], dict[int, bytes]],
    timeout: float = 180.0,
) -> None:
    """After crashes: the batch ends, every request has exactly one result, none changed once written."""
    assert snapshots[0], "the first kill should land after some results were written"
    with make_client(base_url) as client:
        ended = wait_ended(client, batch_id, n, timeout=timeout)
        assert ended.request_counts.succeeded == n
        ids = [line.custom_id for line in client.messages.batches.results(batch_id)]
    assert len(ids) == n and set(ids) == {f"req-{i}" for i in range(n)}
    written = final()
    assert len(written) == n
    for snap in snapshots:
        for key, line in snap.items():
            assert written[key] == line, "a written result changed after a crash"
