"""PostgreSQL restarted mid-batch: batchd answers 5xx while it is down, reconnects, loses nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.acceptance.conftest import make_client, simple_request, total, wait_ended
from tests.acceptance.server import ServerProcess, WorkerProcess
from tests.acceptance.test_postgres_fleet import FLEET_ENV, wait_progress, written_results
from tests.integration import pg

pytestmark = [
    pytest.mark.postgres,
    # Known bug, under investigation (issue 4): in about half the runs both processes stop claiming
    # after the restart and the batch never ends. Opt in to run it: BATCHD_TEST_DB_RESTART=1.
    pytest.mark.skipif(
        os.environ.get("BATCHD_TEST_DB_RESTART") != "1",
        reason="database-restart recovery is intermittently stuck (known bug); set BATCHD_TEST_DB_RESTART=1",
    ),
]

N = 5000
DOWN_FOR = 3.0  # seconds the database stays down


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


@pytest.fixture
def database() -> Iterator[str]:
    name, url = pg.create_database_sync()
    yield url
    pg.drop_database_sync(name)


def test_database_restart_mid_batch(database: str, tmp_path: Path) -> None:
    cluster = _cluster()
    # A restart makes every lease lapse at once and requests are claimed again: the crash-loop guard
    # (max_claims) is not what this test is about, and leases a little longer than the fleet test's
    # keep a loaded machine from re-claiming work that is merely slow.
    env = {"BATCHD_DATABASE_URL": database, **FLEET_ENV, "BATCHD_LEASE": "5s", "BATCHD_MAX_CLAIMS": "50"}
    api = ServerProcess(tmp_path / "api", env).start()
    worker = WorkerProcess(tmp_path / "worker", env).start()
    try:
        with make_client(api.base_url) as client:
            batch = client.messages.batches.create(requests=[simple_request(f"req-{i}") for i in range(N)])
        wait_progress(api.base_url, batch.id)
        time.sleep(0.5)
        _pg(cluster, "stop")
        try:
            before = None
            deadline = time.monotonic() + DOWN_FOR
            while time.monotonic() < deadline:
                got = httpx.get(f"{api.base_url}/v1/messages/batches/{batch.id}", timeout=30)
                assert got.status_code >= 500, got.text  # never data from a store that is not there
                assert orjson.loads(got.content)["type"] == "error"
                before = got
                time.sleep(0.2)
            created = httpx.post(
                f"{api.base_url}/v1/messages/batches",
                json={"requests": [simple_request("late")]},
                timeout=30,
            )
            assert created.status_code >= 500 and orjson.loads(created.content)["type"] == "error"
            assert before is not None and before.status_code == 503
        finally:
            _pg(cluster, "start")
        snapshot = written_results(database)
        assert 0 < len(snapshot) < N, "the restart should land mid-batch"

        with make_client(api.base_url) as client:
            ended = wait_ended(client, batch.id, N, timeout=180)
            assert ended.request_counts.succeeded == N and total(ended) == N
            ids = [line.custom_id for line in client.messages.batches.results(batch.id)]
        assert sorted(ids) == sorted(f"req-{i}" for i in range(N))
        final = written_results(database)
        assert len(final) == N
        assert all(final[key] == line for key, line in snapshot.items()), "a written result changed"
        assert worker.stop() == 0 and api.stop() == 0
    finally:
        worker.stop()
        api.stop()
