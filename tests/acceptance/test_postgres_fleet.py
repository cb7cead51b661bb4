"""Scale-out on PostgreSQL: `batchd serve` and two `batchd worker` processes share one database and
survive `kill -9` at random moments: every request ends with exactly one result, none changes."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest

from tests.acceptance.conftest import (
    FLEET_ENV,
    assert_recovered,
    kill_9_at_random,
    make_client,
    results_in_postgres,
    simple_request,
    wait_progress,
)
from tests.acceptance.server import ServerProcess, WorkerProcess

pytestmark = pytest.mark.postgres

N = 20_000  # requests in the crash batch
KILLS = 10  # kill -9 at random moments, each followed by a restart


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
    try:
        with make_client(api.base_url) as client:
            batch = client.messages.batches.create(requests=[simple_request(f"req-{i}") for i in range(N)])
        wait_progress(api.base_url, batch.id)

        written = functools.partial(results_in_postgres, database)
        snapshots = kill_9_at_random(processes, api.base_url, batch.id, N, KILLS, written)
        assert_recovered(api.base_url, batch.id, N, snapshots, written)
        assert [w.stop() for w in workers] == [0, 0]  # SIGTERM: clean exit
    finally:
        for proc in processes:
            proc.stop()
