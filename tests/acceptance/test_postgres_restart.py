"""PostgreSQL restarted mid-batch: batchd answers 5xx while it is down, reconnects, loses nothing."""

from __future__ import annotations

import functools
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

import httpx
import orjson
import pytest

from tests.acceptance.conftest import (
    FLEET_ENV,
    assert_recovered,
    make_client,
    results_in_postgres,
    simple_request,
    wait_progress,
)
from tests.acceptance.server import ServerProcess, WorkerProcess
from tests.integration import pg

pytestmark = pytest.mark.postgres

N = 20_000
OUTAGES = 2
DOWN_FOR = 3.0  # seconds the database stays down each time


def _cluster() -> list[str]:
    """`pg_ctlcluster` arguments for the local cluster serving the test database's port, or skip."""
    parts = urllib.parse.urlsplit(pg.ADMIN_URL)
    if shutil.which("pg_lsclusters") is None or parts.hostname not in {"127.0.0.1", "localhost"}:
        pytest.skip("restarting PostgreSQL needs a local cluster managed by pg_ctlcluster")
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True)
    for line in listing.stdout.splitlines():
        version, name, port, *_ = line.split()
        if int(port) == (parts.port or 5432):
            return ["pg_ctlcluster", "--skip-systemctl-redirect", version, name]
    pytest.skip(f"no local cluster listens on port {parts.port}")


def _pg(cluster: list[str], action: str) -> None:
    subprocess.run([*cluster, action], check=True, capture_output=True, timeout=60)


def test_database_restart_mid_batch(database: str, tmp_path: Path) -> None:
    """One API process and two workers; PostgreSQL is stopped twice mid-batch for a few seconds."""
    cluster = _cluster()
    # Default crash-loop guard (max_claims): an outage must not count as a crash of every worker.
    # Leases a little longer than the fleet test's keep a loaded machine from re-claiming work that
    # is merely slow.
    env = {"BATCHD_DATABASE_URL": database, **FLEET_ENV, "BATCHD_LEASE": "5s"}
    api = ServerProcess(tmp_path / "api", env).start()
    workers = [WorkerProcess(tmp_path / f"worker{i}", env).start() for i in range(2)]
    try:
        with make_client(api.base_url) as client:
            batch = client.messages.batches.create(requests=[simple_request(f"req-{i}") for i in range(N)])
        written = functools.partial(results_in_postgres, database)
        snapshots: list[dict[int, bytes]] = []
        for _ in range(OUTAGES):
            wait_progress(api.base_url, batch.id, more_than=len(snapshots[-1]) if snapshots else 0)
            time.sleep(0.5)
            _pg(cluster, "stop")
            try:
                _answers_5xx_while_down(api.base_url, batch.id)
            finally:
                _pg(cluster, "start")
            snapshots.append(written())
            assert 0 < len(snapshots[-1]) < N, "each restart should land mid-batch"

        assert_recovered(api.base_url, batch.id, N, snapshots, written, timeout=240)
        assert all(w.stop() == 0 for w in workers) and api.stop() == 0
    finally:
        for w in workers:
            w.stop()
        api.stop()


def _answers_5xx_while_down(base_url: str, batch_id: str) -> None:
    """While the database is down: errors in Anthropic's envelope, never data; creates refused."""
    seen_503 = False
    deadline = time.monotonic() + DOWN_FOR
    while time.monotonic() < deadline:
        got = httpx.get(f"{base_url}/v1/messages/batches/{batch_id}", timeout=30)
        assert got.status_code >= 500, got.text  # never data from a store that is not there
        assert orjson.loads(got.content)["type"] == "error"
        seen_503 |= got.status_code == 503
        time.sleep(0.2)
    created = httpx.post(
        f"{base_url}/v1/messages/batches", json={"requests": [simple_request("late")]}, timeout=30
    )
    assert created.status_code >= 500 and orjson.loads(created.content)["type"] == "error"
    assert seen_503
