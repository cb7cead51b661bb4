"""`POST /v1/messages`: one synchronous call through the same routes as the batches.

The body is validated by `params.prepare` as a batch request's params are (same errors, same
shorthand). `stream: true` is answered as Server-Sent Events in Anthropic's event order, as the
upstream's tokens arrive (stream.py; the simulator's from its complete Message).

A synchronous answer is the standard tier's (`usage.service_tier: "standard"`; batch results say
`"batch"`), and always has `stop_details` and `container` (null when there is nothing to say).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from batchd import exceptions, params
from batchd.api import auth, bodies, errors, responses, services
from batchd.api.anthropic import stream as sse
from batchd.api.anthropic import version
from batchd.backends import streaming
from batchd.engine.router import Route
from batchd.tools import scope

MAX_BODY = 32 * 1024 * 1024  # bytes, as Anthropic's Messages API


async def read_object(request: Request) -> dict[str, Any]:
    """The request's JSON object body, once the caller is authenticated; else InvalidRequest.
    The caller's workspace becomes this request's `tools.scope` (whose containers and files)."""
    settings = services.of(request).settings
    scope.workspace.set(await auth.workspace(request))
    version.check(request, settings)
    body = await bodies.read_body(request, min(MAX_BODY, settings.max_batch_bytes))
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if exc.msg == "depth limit exceeded":  # orjson's own limit, 1024 levels
            raise exceptions.InvalidRequest(params.TOO_DEEP) from None
        raise exceptions.InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise exceptions.InvalidRequest("The request body must be a JSON object")
    return raw


def route_for(svc: services.Services, model: str) -> Route:
    """The route serving `model`; 503 while the server starts or stops (no router yet)."""
    if svc.router is None:
        raise exceptions.StoreUnavailable("batchd is starting or stopping; try again shortly")
    return svc.router.route(model)


def betas_of(request: Request) -> list[str]:
    """The `anthropic-beta` header's values."""
    return [b.strip() for b in request.headers.get("anthropic-beta", "").split(",") if b.strip()]


async def create(request: Request) -> Response:
    svc = services.of(request)
    settings = svc.settings
    raw = await read_object(request)
    stream = raw.pop("stream", False)
    if not isinstance(stream, bool):
        raise exceptions.InvalidRequest("stream: Input should be a valid boolean")
    try:
        prepared = params.prepare(
            raw, strict=settings.strict, default_thinking_budget=settings.thinking_budget
        )
    except exceptions.InvalidParams as exc:
        raise exceptions.InvalidRequest(exc.message) from None
    route = route_for(svc, prepared["model"])
    betas = betas_of(request)
    rid = errors.request_id(request)
    if stream:
        return await streamed(route, prepared, betas, rid, settings.request_timeout)
    try:
        async with route.admit(prepared, realtime=True), asyncio.timeout(settings.request_timeout):
            message = await route.backend.create_message(prepared, betas=betas)
    except TimeoutError:
        timeout = exceptions.BackendTimeout(
            f"The backend did not answer within {settings.request_timeout:g}s"
        )
        return errors.render(timeout, rid)
    except exceptions.BackendError as exc:
        return backend_failure(exc, rid)
    return responses.json(realtime(message), request)


async def streamed(
    route: Route, prepared: dict[str, Any], betas: list[str], rid: str, timeout: float
) -> Response:
    """The call as Server-Sent Events, once its first event has come (stream.py); an error before
    it is the usual error response."""

    @contextlib.asynccontextmanager
    async def produce() -> AsyncIterator[AsyncIterator[streaming.Event]]:
        async with route.admit(prepared, realtime=True):
            events = streaming.stream_of(route.backend, prepared, betas=betas)
            try:
                yield events
            finally:
                close = getattr(events, "aclose", None)  # an async generator's: ends the upstream call
                if close is not None:
                    await close()

    try:
        body = await sse.open_stream(produce, timeout=timeout, first=realtime_start)
    except exceptions.BackendError as exc:
        return backend_failure(exc, rid)
    return StreamingResponse(body, media_type="text/event-stream", headers={"request-id": rid})


def realtime_start(event: streaming.Event) -> streaming.Event:
    """The `message_start` of a stream, with the realtime fields `realtime` gives a Message."""
    name, data = event
    if name != "message_start":
        return event
    message = realtime({**data["message"]})
    return name, {**data, "message": message}


def backend_failure(exc: exceptions.BackendError, rid: str) -> Response:
    """A backend's failure as the API's error, with the retry headers the SDK reads."""
    headers = {}
    if exc.retry_after is not None:
        headers["retry-after"] = f"{max(0, round(exc.retry_after))}"
    if not exc.retryable:
        headers["x-should-retry"] = "false"
    return errors.render(exc, rid, headers)


def realtime(message: dict[str, Any]) -> dict[str, Any]:
    """A backend's Message as the synchronous API answers it: the standard tier's usage (unless an
    Anthropic upstream named another realtime tier), and `stop_details` and `container` always
    present."""
    usage = dict(message.get("usage") or {})
    if usage.get("service_tier") in (None, "batch"):
        usage["service_tier"] = "standard"
    out = {**message, "usage": usage}
    out.setdefault("stop_details", None)
    out.setdefault("container", None)
    return out
