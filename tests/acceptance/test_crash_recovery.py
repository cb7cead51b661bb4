"""kill -9 mid-batch, restart: every request ends with exactly one result and none changes."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from tests.acceptance.conftest import (
    assert_recovered,
    make_client,
    results_in_sqlite,
    simple_request,
    total,
    wait_ended,
)
from tests.acceptance.server import ServerProcess

N = 3000


def test_kill_9_mid_batch_then_restart(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(concurrency="64", sim_latency="20ms")
    client = make_client(srv.base_url)
    batch = client.messages.batches.create(requests=[simple_request(f"req-{i}") for i in range(N)])
    client.close()

    written = functools.partial(results_in_sqlite, srv)
    snapshots: list[dict[int, bytes]] = []
    for _ in range(3):
        time.sleep(0.4)
        srv.kill9()
        snapshots.append(written())
        srv.start()
        with make_client(srv.base_url) as c:
            assert total(c.messages.batches.retrieve(batch.id)) == N  # counts add up after a crash

    assert 0 < len(snapshots[0]) < N, "the kill should land mid-batch"
    assert_recovered(srv.base_url, batch.id, N, snapshots, written, timeout=60)


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
