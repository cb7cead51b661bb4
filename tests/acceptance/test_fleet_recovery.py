"""A PostgreSQL fleet takes over a killed process's requests in seconds, not when their leases lapse:
each process holds a liveness lock that PostgreSQL frees when the process dies (`kill -9`). The
crash-loop guard still counts every real crash."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import asyncpg
import pytest

from tests.acceptance.conftest import make_client, simple_request, wait_ended
from tests.acceptance.server import ServerProcess, WorkerProcess
from tests.integration.backends_upstream import Upstream

pytestmark = pytest.mark.postgres

PICKUP_BOUND = 10.0  # seconds from the kill until the dead process's requests run again
HOST = socket.gethostname()


def write_config(tmp_path: Path, upstream: Upstream, *, timeout: str) -> Path:
    """Each process runs up to 8 calls on a route to the loopback upstream."""
    config = tmp_path / "batchd.toml"
    config.write_text(
        f"""
concurrency = 8

[[routes]]
model = "up-*"
backend = "anthropic"
base_url = "{upstream.url}"
timeout = "{timeout}"
concurrency = 8
"""
    )
    return config


def running(database: str) -> list[tuple[str, str, int]]:
    """(custom_id, worker, claims) of every running request."""

    async def fetch() -> list[tuple[str, str, int]]:
        conn = await asyncpg.connect(database)
        try:
            rows = await conn.fetch("SELECT custom_id, worker, claims FROM requests WHERE state = 1")
            return [(r[0], r[1], r[2]) for r in rows]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def engine_pid(process: ServerProcess | WorkerProcess) -> int:
    """The pid in the worker ids of the requests `process` claims."""
    if isinstance(process, ServerProcess):
        return process.app_pid
    assert process.proc is not None
    return process.proc.pid


def held_by(database: str, pid: int) -> list[str]:
    """The custom_ids of the running requests that process `pid` holds (worker `host:pid:…`)."""
    return [custom_id for custom_id, worker, _ in running(database) if worker.startswith(f"{HOST}:{pid}:")]


def request(custom_id: str, text: str) -> dict[str, object]:
    return simple_request(custom_id, text, model="up-model", max_tokens=16)


def test_a_killed_workers_requests_are_picked_up_within_seconds(
    database: str, upstream: Upstream, tmp_path: Path
) -> None:
    """The lease stays at its 60 s default; the requests of a worker killed mid-call run again on
    the other processes within PICKUP_BOUND, and every request ends with exactly one result."""
    n = 48
    config = write_config(tmp_path, upstream, timeout="30s")
    env = {"BATCHD_DATABASE_URL": database, "BATCHD_CONFIG": str(config), "BATCHD_LEASE": "60s"}
    api = ServerProcess(tmp_path / "api", env).start()
    workers = [WorkerProcess(tmp_path / f"worker{i}", env).start() for i in range(2)]
    victim = workers[0]
    assert victim.proc is not None
    texts = {f"r{i}": f"pickup r{i} stall=3x1" for i in range(n)}  # first calls take 3 s, reruns none
    try:
        with make_client(api.base_url) as client:
            batch = client.messages.batches.create(requests=[request(c, t) for c, t in texts.items()])
            deadline = time.monotonic() + 30
            while not held_by(database, victim.proc.pid):
                assert time.monotonic() < deadline, "the worker never claimed"
                time.sleep(0.05)
            time.sleep(0.5)  # its calls are in flight at the upstream
            victim.kill9()
            killed_at = time.monotonic()
            orphans = held_by(database, victim.proc.pid)  # nothing moves them but a takeover
            assert orphans

            ended = wait_ended(client, batch.id, n, timeout=120)
            assert ended.request_counts.succeeded == n
            ids = [line.custom_id for line in client.messages.batches.results(batch.id)]
        assert sorted(ids) == sorted(texts)  # exactly one result each

        pickups = []
        for custom_id in orphans:
            again = [t for t in upstream.arrivals[texts[custom_id]] if t > killed_at]
            assert again, f"{custom_id} was not run again"
            pickups.append(again[0] - killed_at)
        assert max(pickups) < PICKUP_BOUND, pickups
        assert "Traceback" not in api.log() + workers[1].log()
    finally:
        for proc in (*workers, api):
            proc.stop()


def test_a_request_whose_worker_is_killed_five_times_ends_errored(
    database: str, upstream: Upstream, tmp_path: Path
) -> None:
    """Liveness counts only crashes: a request that every process claiming it dies on (here: each is
    killed mid-call) is errored after max_claims (5) claims instead of taking down a sixth."""
    config = write_config(tmp_path, upstream, timeout="600s")
    env = {
        "BATCHD_DATABASE_URL": database,
        "BATCHD_CONFIG": str(config),
        "BATCHD_TAKEOVER_AFTER": "2s",
        "BATCHD_MAINTENANCE_INTERVAL": "0.5s",
    }
    api = ServerProcess(tmp_path / "api", env).start()
    worker = WorkerProcess(tmp_path / "worker", env).start()
    text = "doomed stall=8x99"  # every call hangs until its process is killed
    try:
        with make_client(api.base_url) as client:
            batch = client.messages.batches.create(requests=[request("doomed", text)])
            for kill in range(5):
                deadline = time.monotonic() + 30
                # Claimed again, and its call in flight at the upstream.
                while not (now := running(database)) or now[0][2] != kill + 1 or upstream.seen[text] <= kill:
                    assert time.monotonic() < deadline, f"not claimed again after {kill} kills: {now}"
                    time.sleep(0.05)
                holder = int(now[0][1].split(":")[1])
                # A worker id names the process that runs the engine: for `batchd serve`, granian's worker.
                victim = next(p for p in (api, worker) if engine_pid(p) == holder)
                victim.kill9()
                victim.start()
            ended = wait_ended(client, batch.id, 1, timeout=60)
            assert ended.request_counts.errored == 1
            (line,) = list(client.messages.batches.results(batch.id))
        assert line.result.type == "errored"
        assert "abandoned by 5 crashed workers" in str(line.result.error)
        assert upstream.seen[text] == 5  # the sixth claim did not call it
    finally:
        worker.stop()
        api.stop()
