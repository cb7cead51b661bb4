"""kill -9 mid-batch, restart: every request ends with exactly one result and none changes."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from tests.acceptance.conftest import make_client, simple_request, total, wait_ended
from tests.acceptance.server import ServerProcess

N = 3000


def written_results(srv: ServerProcess) -> dict[int, bytes]:
    conn = sqlite3.connect(f"file:{srv.data_dir / 'batchd.db'}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT key, line FROM results").fetchall())
    finally:
        conn.close()


def test_kill_9_mid_batch_then_restart(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(concurrency="64", sim_latency="20ms")
    client = make_client(srv.base_url)
    batch = client.messages.batches.create(requests=[simple_request(f"req-{i}") for i in range(N)])
    client.close()

    snapshots: list[dict[int, bytes]] = []
    for _ in range(3):
        time.sleep(0.4)
        srv.kill9()
        snapshots.append(written_results(srv))
        srv.start()
        with make_client(srv.base_url) as c:
            assert total(c.messages.batches.retrieve(batch.id)) == N  # counts add up after a crash

    assert 0 < len(snapshots[0]) < N, "the kill should land mid-batch"
    with make_client(srv.base_url) as client:
        ended = wait_ended(client, batch.id, N, timeout=60)
        assert ended.request_counts.succeeded == N
        ids = [line.custom_id for line in client.messages.batches.results(batch.id)]
    assert len(ids) == N and set(ids) == {f"req-{i}" for i in range(N)}

    final = written_results(srv)
    for snap in snapshots:
        for key, line in snap.items():
            assert final[key] == line, "a written result changed after a restart"


def test_sigterm_is_a_clean_shutdown(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(sim_latency="10ms", log_level="info")
    with make_client(srv.base_url) as client:
        batch = client.messages.batches.create(requests=[simple_request(f"r{i}") for i in range(200)])
    assert srv.stop() == 0
    assert "Traceback" not in srv.log() and "batchd stopped" in srv.log()
    srv.start()
    with make_client(srv.base_url) as client:
        ended = wait_ended(client, batch.id, 200)
        assert ended.request_counts.succeeded == 200
