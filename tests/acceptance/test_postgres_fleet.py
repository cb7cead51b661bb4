"""Scale-out on PostgreSQL: `batchd serve` and two `batchd worker` processes share one database and
survive `kill -9` at random moments: every request ends with exactly one result, none changes."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.acceptance.conftest import assert_recovered, make_client, simple_request, total
from tests.acceptance.server import ServerProcess, WorkerProcess
from tests.integration import pg

pytestmark = pytest.mark.postgres

N = 20_000  # requests in the crash batch
KILLS = 10  # kill -9 at random moments, each followed by a restart
FLEET_ENV = {
    "BATCHD_CONCURRENCY": "32",
    "BATCHD_SIM_LATENCY": "100ms",  # ~1,000 req/s for three processes: the batch outlives the kills
    "BATCHD_LEASE": "2s",  # a killed process's work returns to pending quickly
    "BATCHD_MAINTENANCE_INTERVAL": "0.5s",
}


@pytest.fixture
def database() -> Iterator[str]:
    name, url = pg.create_database_sync()
    yield url
    pg.drop_database_sync(name)


def written_results(url: str) -> dict[int, bytes]:
    async def fetch() -> dict[int, bytes]:
        conn = await asyncpg.connect(url)
        try:
            return dict(await conn.fetch("SELECT key, line FROM results"))  # type: ignore[arg-type]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def wait_progress(base_url: str, batch_id: str, timeout: float = 60.0, *, more_than: int = 0) -> None:
    """Waits until more than `more_than` results are written, so a crash lands mid-batch even under load."""
    deadline = time.monotonic() + timeout
    with make_client(base_url) as client:
        while client.messages.batches.retrieve(batch_id).request_counts.succeeded <= more_than:
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.05)


def test_worker_refuses_sqlite(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "batchd", "worker", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "needs a PostgreSQL database_url" in proc.stderr


def test_serve_and_workers_kill_9_at_random(database: str, tmp_path: Path) -> None:
    env = {"BATCHD_DATABASE_URL": database, **FLEET_ENV}
    api = ServerProcess(tmp_path / "api", env).start()
    workers = [WorkerProcess(tmp_path / f"worker{i}", env).start() for i in range(2)]
    processes: list[ServerProcess | WorkerProcess] = [api, *workers]
    rng = random.Random()
    try:
        with make_client(api.base_url) as client:
            batch = client.messages.batches.create(requests=[simple_request(f"req-{i}") for i in range(N)])
        wait_progress(api.base_url, batch.id)

        snapshots: list[dict[int, bytes]] = []
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.2, 1.0))
            victim = rng.choice(processes)
            victim.kill9()
            snapshots.append(written_results(database))
            assert len(snapshots[-1]) < N, "the batch ended before every kill landed: make it longer"
            victim.start()
            with make_client(api.base_url) as client:
                assert total(client.messages.batches.retrieve(batch.id)) == N  # counts add up

        assert_recovered(api.base_url, batch.id, N, snapshots, lambda: written_results(database))
        assert [w.stop() for w in workers] == [0, 0]  # SIGTERM: clean exit
    finally:
        for proc in processes:
            proc.stop()
