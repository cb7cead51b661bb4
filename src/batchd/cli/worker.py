"""`batchd worker`: the engine without the API, for scale-out on PostgreSQL.

Any number of workers and `batchd serve` processes share one PostgreSQL database: they claim work
with `FOR UPDATE SKIP LOCKED`, renew their leases by heartbeat, recover each other's lapsed leases,
and hear about new batches through LISTEN/NOTIFY. SIGTERM or SIGINT stops a worker cleanly: it stops
claiming, lets in-flight requests finish for a few seconds, writes their results and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from wsgiref.simple_server import WSGIServer

import prometheus_client

from batchd import exceptions, store
from batchd.cli import debug
from batchd.config import Settings
from batchd.engine import Dispatcher
from batchd.engine.router import Router
from batchd.metrics import Metrics

logger = logging.getLogger("batchd")


def check(settings: Settings) -> None:
    """A worker needs a store shared between processes: SQLite belongs to one `batchd serve`."""
    if not settings.store_url.startswith(("postgresql://", "postgres://")):
        raise exceptions.ConfigError(
            "database_url: batchd worker needs a PostgreSQL database_url (postgresql://…); "
            "a SQLite store is owned by one `batchd serve` process, which runs its own engine"
        )


async def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Runs one dispatcher until `stop` is set (by default: until SIGTERM or SIGINT)."""
    check(settings)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    debug.install()
    the_store = store.open_store(settings.store_url, max_running=settings.fleet_max_running)
    await the_store.open()
    metrics = Metrics()
    router = Router.from_settings(settings, metrics=metrics)
    engine = Dispatcher(settings, the_store, router, metrics=metrics)
    exporter = _serve_metrics(metrics, settings) if settings.metrics_port else None
    try:
        await engine.start()
        logger.info(
            "batchd worker %s ready (store %s)", engine.worker_id, store.redacted_url(settings.store_url)
        )
        await stop.wait()
    finally:
        await engine.stop()
        await router.aclose()
        await the_store.aclose()
        if exporter is not None:
            exporter.shutdown()
        logger.info("batchd worker stopped")


def _serve_metrics(metrics: Metrics, settings: Settings) -> WSGIServer:
    """Prometheus's own exporter, in a thread: GET any path -> the worker's metrics."""
    server, _ = prometheus_client.start_http_server(
        settings.metrics_port, addr=settings.host, registry=metrics.registry
    )
    logger.info("metrics on http://%s:%d/metrics", settings.host, settings.metrics_port)
    return server


def main(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(run(settings))
