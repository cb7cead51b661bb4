"""A route's `fleet_concurrency` holds across processes: `batchd serve` and a `batchd worker` on one
PostgreSQL database, each allowed 8 calls to the upstream, never have more than 3 in flight there
together."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.conftest import make_client, simple_request, wait_ended
from tests.acceptance.server import ServerProcess, WorkerProcess
from tests.integration.backends_upstream import Upstream

pytestmark = pytest.mark.postgres

N = 40
FLEET = 3


def test_fleet_concurrency_of_a_route_holds_across_processes(
    database: str, upstream: Upstream, tmp_path: Path
) -> None:
    config = tmp_path / "batchd.toml"
    config.write_text(
        f"""
concurrency = 8

[[routes]]
model = "up-*"
backend = "anthropic"
base_url = "{upstream.url}"
timeout = "10s"
concurrency = 8
fleet_concurrency = {FLEET}
"""
    )
    env = {"BATCHD_DATABASE_URL": database, "BATCHD_CONFIG": str(config)}
    api = ServerProcess(tmp_path / "api", env).start()
    worker = WorkerProcess(tmp_path / "worker", env).start()
    try:
        requests = [
            simple_request(f"r{i}", f"r{i} stall=0.15x1", model="up-model", max_tokens=16) for i in range(N)
        ]
        with make_client(api.base_url) as client:
            batch = client.messages.batches.create(requests=requests)
            ended = wait_ended(client, batch.id, N, timeout=120)
            assert ended.request_counts.succeeded == N
            results = list(client.messages.batches.results(batch.id))
        assert sorted(r.custom_id for r in results) == sorted(f"r{i}" for i in range(N))
        assert all(r.result.type == "succeeded" for r in results)
        assert len(upstream.calls) == N
        assert 1 < upstream.max_inflight <= FLEET, upstream.max_inflight
        assert "ready (store" in worker.log()
        assert "Traceback" not in api.log() + worker.log()
    finally:
        worker.stop()
        api.stop()
