"""The ASGI app: `create_app(services)` mounts the wires, dashboard, /health, /metrics."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchd import __version__, dashboard, exceptions
from batchd.api import auth, errors, responses, services
from batchd.api.accesslog import AccessLog
from batchd.api.anthropic import batches, messages, models, openapi
from batchd.metrics import CONTENT_TYPE

PREFIX = "/v1/messages/batches"


async def health(request: Request) -> Response:
    """200 while the store answers, 503 when it does not (for load balancers)."""
    svc = services.of(request)
    try:
        await svc.store.list_batches("-health-", limit=1)
    except Exception as exc:
        # The reason goes to the log only: /health answers without a key.
        errors.logger.warning("health check: the store did not answer: %s", exc)
        return responses.json({"status": "unavailable", "version": __version__}, request, status=503)
    settings = svc.settings
    limits = {"max_requests": settings.max_requests, "max_batch_bytes": settings.max_batch_bytes}
    body: dict[str, object] = {"status": "ok", "version": __version__, "limits": limits}
    # -- server tools: which providers are up (one down is no reason for a 503; why: in the log) --
    if svc.router is not None and svc.router.tools is not None:
        found = await svc.router.tools.health()
        body["server_tools"] = {name: "up" if why is None else "down" for name, why in found.items()}
    # -- end of server tools ---------------------------------------------------------------------
    return responses.json(body, request)


async def metrics_text(request: Request) -> Response:
    svc = services.of(request)
    auth.workspace(request, svc.settings.api_keys)
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE)


async def openapi_json(request: Request) -> Response:
    return responses.json(openapi.document(), request)


def create_app(svc: services.Services) -> Starlette:
    """The app; every view reaches `svc` through `batchd.api.services.of(request)`."""
    routes = [
        Route(PREFIX, batches.create, methods=["POST"]),
        Route(PREFIX, batches.list_batches, methods=["GET"]),
        Route(PREFIX + "/{batch_id}", batches.retrieve, methods=["GET"]),
        Route(PREFIX + "/{batch_id}", batches.delete, methods=["DELETE"]),
        Route(PREFIX + "/{batch_id}/cancel", batches.cancel, methods=["POST"]),
        Route(PREFIX + "/{batch_id}/results", batches.results, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics_text, methods=["GET"]),
        Route("/v1/messages", messages.create, methods=["POST"]),
        Route("/v1/models", models.list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", models.retrieve_model, methods=["GET"]),
        *dashboard.routes(),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            exceptions.BatchdError: errors.handle_batchd_error,
            HTTPException: errors.handle_http_exception,
            Exception: errors.handle_unexpected,
        },
        middleware=[Middleware(AccessLog, metrics=svc.metrics)],
    )
    app.state.services = svc
    return app
