"""A single `batchd serve` on SQLite, a 20,000-request batch and `kill -9` at ten random moments:
every request ends with exactly one result, no written result changes, the counts always add up."""

from __future__ import annotations

import random
import time
from pathlib import Path

from tests.acceptance.conftest import assert_recovered, make_client, simple_request, total
from tests.acceptance.server import ServerProcess
from tests.acceptance.test_crash_recovery import written_results
from tests.acceptance.test_postgres_fleet import wait_progress

N = 20_000
KILLS = 10


def test_serve_on_sqlite_kill_9_at_random(tmp_path: Path) -> None:
    srv = ServerProcess(
        tmp_path / "data",
        {"BATCHD_CONCURRENCY": "96", "BATCHD_SIM_LATENCY": "100ms", "BATCHD_MAINTENANCE_INTERVAL": "0.5s"},
    ).start()
    rng = random.Random()
    try:
        with make_client(srv.base_url) as client:
            batch = client.messages.batches.create(requests=[simple_request(f"req-{i}") for i in range(N)])
        wait_progress(srv.base_url, batch.id)
        snapshots: list[dict[int, bytes]] = []
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.2, 1.0))
            srv.kill9()
            snapshots.append(written_results(srv))
            assert len(snapshots[-1]) < N, "the batch ended before every kill landed: make it longer"
            srv.start()
            with make_client(srv.base_url) as client:
                assert total(client.messages.batches.retrieve(batch.id)) == N

        assert_recovered(srv.base_url, batch.id, N, snapshots, lambda: written_results(srv))
    finally:
        srv.stop()
