"""A single `batchd serve` on SQLite, a 20,000-request batch and `kill -9` at ten random moments:
every request ends with exactly one result, no written result changes, the counts always add up."""

from __future__ import annotations

import functools
from pathlib import Path

from tests.acceptance.conftest import (
    assert_recovered,
    kill_9_at_random,
    make_client,
    results_in_sqlite,
    simple_request,
    wait_progress,
)
from tests.acceptance.server import ServerProcess

N = 20_000
KILLS = 10


def test_serve_on_sqlite_kill_9_at_random(tmp_path: Path) -> None:
    srv = ServerProcess(
        tmp_path / "data",
        {"BATCHD_CONCURRENCY": "96", "BATCHD_SIM_LATENCY": "100ms", "BATCHD_MAINTENANCE_INTERVAL": "0.5s"},
    ).start()
    try:
        with make_client(srv.base_url) as client:
            batch = client.messages.batches.create(requests=[simple_request(f"req-{i}") for i in range(N)])
        wait_progress(srv.base_url, batch.id)
        written = functools.partial(results_in_sqlite, srv)
        snapshots = kill_9_at_random([srv], srv.base_url, batch.id, N, KILLS, written)
        assert_recovered(srv.base_url, batch.id, N, snapshots, written)
    finally:
        srv.stop()
