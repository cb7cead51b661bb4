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
import socket
import threading
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import prometheus_client
from prometheus_client.exposition import ThreadingWSGIServer

from batchd import exceptions, store
from batchd.api import auth, errors
from batchd.api import webhooks as api_webhooks
from batchd.cli import debug
from batchd.config import Settings
from batchd.engine import Dispatcher
from batchd.engine.router import Router, tools_secret
from batchd.metrics import Metrics

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger("batchd")


def check(settings: Settings) -> None:
    """A worker needs a store shared between processes (SQLite belongs to one `batchd serve`), and
    a metrics port that someone may read."""
    if not settings.store_url.startswith(("postgresql://", "postgres://")):
        raise exceptions.ConfigError(
            "database_url: batchd worker needs a PostgreSQL database_url (postgresql://…); "
            "a SQLite store is owned by one `batchd serve` process, which runs its own engine"
        )
    if settings.metrics_port and settings.keys_required and not settings.metrics_keys:
        # Every scrape would be refused: the API keys are the workspaces', not the operator's.
        raise exceptions.ConfigError(
            "metrics_port: with api_keys set, only a key in metrics_keys (BATCHD_METRICS_KEYS) "
            "may read the metrics; set the keys Prometheus scrapes with"
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
    the_store = store.open_store(
        settings.store_url, max_running=settings.fleet_max_running, weights=settings.weights
    )
    await the_store.open()
    metrics = Metrics()
    router = Router.from_settings(
        settings, metrics=metrics, tools_secret=await tools_secret(the_store, settings), store=the_store
    )
    engine = Dispatcher(
        settings, the_store, router, metrics=metrics, webhooks=api_webhooks.sender(settings, the_store)
    )
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
    """Prometheus's exporter in a thread, behind the same keys as `/metrics` on `batchd serve`:
    GET any path -> the worker's metrics."""
    family, address = _family(settings.host, settings.metrics_port)
    server_class: type[ThreadingWSGIServer] = type(
        "MetricsServer", (ThreadingWSGIServer,), {"address_family": family}
    )
    app = _authorized(prometheus_client.make_wsgi_app(metrics.registry), settings)
    server = make_server(address, settings.metrics_port, app, server_class, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="batchd metrics", daemon=True).start()
    logger.info("metrics on http://%s:%d/metrics", settings.host, settings.metrics_port)
    return server


def _authorized(app: WSGIApplication, settings: Settings) -> WSGIApplication:
    """`app` for the operator's keys only (`auth.metrics_reader`); others get the error envelope."""

    def authorized(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        headers = {
            "x-api-key": environ.get("HTTP_X_API_KEY", ""),
            "authorization": environ.get("HTTP_AUTHORIZATION", ""),
        }
        try:
            auth.metrics_reader(headers, settings)
        except exceptions.ApiError as exc:
            body = errors.envelope(exc.error_type, exc.message, None)
            status = f"{exc.status} {HTTPStatus(exc.status).phrase}"
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)

    return authorized


def _family(host: str, port: int) -> tuple[socket.AddressFamily, str]:
    """The address family and address to bind `host` with (IPv6 for `::1`, as prometheus_client)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, sockaddr = infos[0]
    return family, str(sockaddr[0])


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Scrapes are not logged."""


def main(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(run(settings))
