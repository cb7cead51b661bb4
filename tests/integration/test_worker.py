"""`batchd worker` in-process: runs the engine on a PostgreSQL store until told to stop."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from batchd import config, exceptions, models
from batchd.cli import worker
from batchd.store import open_store
from tests.acceptance.server import free_port
from tests.integration import pg
from tests.integration.test_store_contract import WS, lines

pytestmark = pytest.mark.postgres


async def test_worker_runs_batches_then_stops_cleanly() -> None:
    name, url = await pg.create_database()
    metrics_port = free_port()
    settings = config.load(
        {"database_url": url, "sim_latency": 0.001, "metrics_port": metrics_port}, environ={}
    )
    store = open_store(url)
    await store.open()
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(settings, stop))
    try:
        await asyncio.sleep(0.5)  # started and listening: the batch below arrives by NOTIFY
        batch = await store.create_batch(
            workspace=WS,
            custom_ids=[f"c{i}" for i in range(300)],
            params=[b'{"model":"m","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'] * 300,
            now=time.time(),
            expires_at=time.time() + 600,
        )
        deadline = time.monotonic() + 60
        while (got := await store.get_batch(WS, batch.id)).processing_status != "ended":
            assert time.monotonic() < deadline, got
            await asyncio.sleep(0.05)
        assert got.request_counts == models.RequestCounts(succeeded=300)
        assert len(await lines(store, batch.id)) == 300
        async with httpx.AsyncClient() as http:  # the worker's own Prometheus endpoint
            scraped = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        assert 'batchd_requests_total{model="m",result="succeeded"} 300.0' in scraped, scraped
        assert "batchd_claimed_requests_total 300.0" in scraped
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
        await store.aclose()
        await pg.drop_database(name)


async def test_worker_refuses_sqlite(tmp_path: object) -> None:
    settings = config.load({"data_dir": str(tmp_path)}, environ={})
    with pytest.raises(exceptions.ConfigError, match="PostgreSQL"):
        await worker.run(settings, asyncio.Event())
