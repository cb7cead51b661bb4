"""The ASGI app: `create_app(services)` mounts the wires, dashboard, /health, /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from batchd import __version__, dashboard, exceptions
from batchd.api import admin, auth, errors, guard, responses, services, webhooks, wires
from batchd.api.accesslog import AccessLog
from batchd.api.anthropic import batches, files, messages, models, openapi, tokens
from batchd.api.deadline import BodyDeadline
from batchd.api.openai import batches as openai_batches
from batchd.api.openai import files as openai_files
from batchd.api.openai import openapi as openai_openapi
from batchd.api.openai import realtime as openai_realtime
from batchd.metrics import CONTENT_TYPE
from batchd.store.base import Store, WriteProblem

PREFIX = "/v1/messages/batches"
PROBE_INTERVAL = 2.0  # seconds a write probe's verdict is reused by /health
PROBE_WAIT = 0.5  # seconds /health waits for a probe before answering the last verdict


class Health:
    """`GET /health`, for load balancers: 200 while the store answers a read and takes a write;
    503 `unavailable` when it does not answer, 503 `degraded` when it answers but cannot be
    written (a full disk), so that creates go elsewhere.

    The write is a probe (`Store.probe_write`), run at most every PROBE_INTERVAL and its verdict
    reused in between, so that a check stays about one read. A probe that waits behind a long write
    (SQLite has one writer) is not waited for beyond PROBE_WAIT: the last verdict answers.
    """

    def __init__(self) -> None:
        self._problem: WriteProblem | None = None  # the last probe's verdict
        self._probed_at = -math.inf  # time.monotonic() of that verdict
        self._probe: asyncio.Task[None] | None = None

    async def endpoint(self, request: Request) -> Response:
        svc = services.of(request)
        status = {"version": __version__}
        try:
            await svc.store.list_batches("-health-", limit=1)
        except Exception as exc:
            # The details go to the log only: /health answers without a key.
            errors.logger.warning("health check: the store did not answer: %s", exc)
            unavailable = {"status": "unavailable", "reason": "the store does not answer", **status}
            return responses.json(unavailable, request, status=503)
        problem = await self._write_problem(svc.store)
        if problem is not None:
            reason = f"the store cannot be written: {problem}"
            return responses.json({"status": "degraded", "reason": reason, **status}, request, status=503)
        settings = svc.settings
        limits = {"max_requests": settings.max_requests, "max_batch_bytes": settings.max_batch_bytes}
        body: dict[str, object] = {"status": "ok", **status, "limits": limits}
        # Server tools: which providers are up (one down is no reason for a 503; why: in the log).
        if svc.router is not None and svc.router.tools is not None:
            found = await svc.router.tools.health()
            body["server_tools"] = {name: "up" if why is None else "down" for name, why in found.items()}
        return responses.json(body, request)

    async def _write_problem(self, store: Store) -> WriteProblem | None:
        if self._probe is None and time.monotonic() - self._probed_at >= PROBE_INTERVAL:
            self._probe = asyncio.create_task(self._run_probe(store), name="batchd health write probe")
        if self._probe is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._probe), PROBE_WAIT)
        return self._problem

    async def _run_probe(self, store: Store) -> None:
        try:
            problem = await store.probe_write(now=time.time())
        except Exception as exc:
            errors.logger.warning("health check: the write probe failed: %s", exc)
            problem = WriteProblem.WRITE_FAILED
        if problem is not None and problem is not self._problem:
            errors.logger.warning("health check: the store cannot be written: %s", problem)
        self._problem, self._probed_at, self._probe = problem, time.monotonic(), None


async def metrics_text(request: Request) -> Response:
    svc = services.of(request)
    await auth.metrics_access(request)
    try:
        svc.metrics.workspace_usage(await svc.store.usage())
    except exceptions.StoreError as exc:  # the other metrics matter most while the store is down
        errors.logger.warning("metrics: no workspace usage, the store did not answer: %s", exc)
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE)


async def options(request: Request) -> Response:
    """`OPTIONS` on any path of the app: the methods it serves."""
    return Response(
        status_code=204,
        headers={"Allow": errors.allowed_methods(request), "request-id": errors.request_id(request)},
    )


async def openapi_json(request: Request) -> Response:
    return responses.json(_openapi(), request)


@functools.cache
def _openapi() -> dict[str, Any]:
    """Anthropic's wire's document with the OpenAI wire's /v1/batches merged in."""
    doc = copy.deepcopy(openapi.document())
    doc["paths"].update(openai_openapi.paths())
    doc["paths"].update(openai_openapi.realtime_paths())
    doc["components"]["schemas"].update(openai_openapi.schemas())
    doc["components"]["responses"].update(openai_openapi.responses())
    return doc


View = Callable[[Request], Awaitable[Response]]


def either(anthropic: View, openai: View) -> View:
    """One /v1/files view for two APIs: Anthropic's Files API or OpenAI's, as api/wires.py tells."""

    async def view(request: Request) -> Response:
        return await (openai if wires.is_openai(request) else anthropic)(request)

    return view


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
        Route("/health", Health().endpoint, methods=["GET"]),
        Route("/metrics", metrics_text, methods=["GET"]),
        Route("/v1/messages", messages.create, methods=["POST"]),
        Route("/v1/messages/count_tokens", tokens.count_tokens, methods=["POST"]),
        Route("/v1/models", models.list_models, methods=["GET"]),
        Route("/v1/files", either(files.list_files, openai_files.list_files), methods=["GET"]),
        Route("/v1/files", either(files.upload, openai_files.upload_file), methods=["POST"]),
        Route("/v1/files/{file_id}", either(files.retrieve, openai_files.retrieve), methods=["GET"]),
        Route("/v1/files/{file_id}", either(files.delete, openai_files.delete), methods=["DELETE"]),
        Route("/v1/files/{file_id}/content", either(files.content, openai_files.content), methods=["GET"]),
        Route("/v1/batches", openai_batches.create, methods=["POST"]),
        Route("/v1/batches", openai_batches.list_batches, methods=["GET"]),
        Route("/v1/batches/{batch_id}", openai_batches.retrieve, methods=["GET"]),
        Route("/v1/batches/{batch_id}/cancel", openai_batches.cancel, methods=["POST"]),
        Route("/v1/chat/completions", openai_realtime.chat_completions, methods=["POST"]),
        Route("/v1/completions", openai_realtime.completions, methods=["POST"]),
        Route("/v1/embeddings", openai_realtime.embeddings, methods=["POST"]),
        Route("/v1/models/{model_id:path}", models.retrieve_model, methods=["GET"]),
        Route("/v1/admin/keys", admin.list_keys, methods=["GET"]),
        Route("/v1/admin/keys", admin.create_key, methods=["POST"]),
        Route("/v1/admin/keys/{key_id}", admin.revoke_key, methods=["DELETE"]),
        Route("/v1/admin/usage", admin.usage, methods=["GET"]),
        *webhooks.routes(),
        *dashboard.routes(),
    ]
    # After every other route: a path's OPTIONS, which no route of its own serves.
    paths = dict.fromkeys(route.path for route in routes if isinstance(route, Route))
    routes += [Route(path, options, methods=["OPTIONS"]) for path in paths]
    app = Starlette(
        routes=routes,
        exception_handlers={
            exceptions.BatchdError: errors.handle_batchd_error,
            HTTPException: errors.handle_http_exception,
            ClientDisconnect: errors.handle_client_disconnect,
            Exception: errors.handle_unexpected,
        },
        middleware=[
            Middleware(AccessLog, metrics=svc.metrics),
            Middleware(guard.Guard, settings=svc.settings),
            Middleware(
                BodyDeadline, timeout=svc.settings.body_timeout, max_bytes=svc.settings.max_batch_bytes
            ),
        ],
    )
    app.state.services = svc
    return app
