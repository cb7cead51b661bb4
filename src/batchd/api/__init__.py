"""The HTTP API: `create_app(settings, store, engine)` returns the ASGI app."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchd import __version__, exceptions
from batchd.api import batches, errors, openapi
from batchd.config import Settings
from batchd.store import Store

PREFIX = "/v1/messages/batches"


async def health(request: Request) -> Response:
    return batches._json({"status": "ok", "version": __version__}, request)


async def openapi_json(request: Request) -> Response:
    return batches._json(openapi.document(), request)


def create_app(settings: Settings, store: Store, engine: Any = None) -> Starlette:
    routes = [
        Route(PREFIX, batches.create, methods=["POST"]),
        Route(PREFIX, batches.list_batches, methods=["GET"]),
        Route(PREFIX + "/{batch_id}", batches.retrieve, methods=["GET"]),
        Route(PREFIX + "/{batch_id}", batches.delete, methods=["DELETE"]),
        Route(PREFIX + "/{batch_id}/cancel", batches.cancel, methods=["POST"]),
        Route(PREFIX + "/{batch_id}/results", batches.results, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            exceptions.BatchdError: errors.handle_batchd_error,
            HTTPException: errors.handle_http_exception,
            Exception: errors.handle_unexpected,
        },
    )
    app.state.settings = settings
    app.state.store = store
    app.state.engine = engine
    return app
