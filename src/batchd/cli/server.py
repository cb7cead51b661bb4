"""`batchd serve`: the API and an engine in one process, sharing one store."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Iterator

import uvicorn
from starlette.applications import Starlette

from batchd import app as web_app
from batchd import store
from batchd.api.services import Services
from batchd.cli import debug
from batchd.config import Settings
from batchd.engine import Dispatcher
from batchd.engine.router import Router

logger = logging.getLogger("batchd")


def build_app(settings: Settings) -> Starlette:
    """The ASGI app; its lifespan opens the store and runs the engine."""
    the_store = store.open_store(settings.store_url, max_running=settings.fleet_max_running)
    services = Services(settings=settings, store=the_store)
    app = web_app.create_app(services)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        debug.install()
        await the_store.open()
        router = Router.from_settings(settings, metrics=services.metrics)
        engine = Dispatcher(settings, the_store, router, metrics=services.metrics)
        # A SQLite file is locked to this process, so any lease left in it is from a dead one.
        await engine.start(recover_all=settings.store_url.startswith("sqlite"))
        services.engine = engine
        services.router = router  # /v1/messages uses the same routes as the engine
        logger.info(
            "batchd ready on http://%s:%d (store %s)",
            settings.host,
            settings.port,
            store.redacted_url(settings.store_url),
        )
        try:
            yield
        finally:
            services.engine = services.router = None  # views answer "stopping" from here on
            await engine.stop()
            await router.aclose()
            await the_store.aclose()
            logger.info("batchd stopped")

    app.router.lifespan_context = lifespan
    return app


def serve(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = uvicorn.Config(
        build_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,  # batchd.access logs each request with its request id instead
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    _Server(config).run()


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after a graceful shutdown; batchd exits 0 instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
