"""The OpenAI wire's realtime endpoints: `POST /v1/chat/completions`, `/v1/completions`,
`/v1/embeddings`, one call each, answered as a batch line of the same body would be.

The body routes by its `model` through the one routing table and runs through the route's
OpenAI endpoints (backends/endpoints/: pass-through with `upstream_model` for OpenAI-compatible
upstreams and llama.cpp, translation to Messages for anthropic routes, the simulator), admitted
as `POST /v1/messages` is: `route.admit(..., realtime=True)`, ahead of every batch call waiting
for the route's slots, its clock (`request_timeout`) started once admitted. Errors are OpenAI's
envelope (api/errors.py), an upstream's HTTP error its own status and envelope (as an error line).

`stream: true` (chat and text completions): an OpenAI-compatible upstream's events are passed on
as they arrive (backends/endpoints/streamed.py), the route's slot held until the stream ends; on
other routes the complete answer is sent as chunks (chunks.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from batchd import exceptions, params
from batchd.api import bodies, errors
from batchd.api.openai import chunks, replies
from batchd.backends import endpoints, sse
from batchd.backends.endpoints import streamed
from batchd.backends.endpoints.passthrough import Passthrough
from batchd.engine.openai_lines import PREFIX_FIELDS, error_body
from batchd.tools.kit import unwrap

MAX_BODY = 32 * 1024 * 1024  # bytes, as the Messages API's
STREAMED = (endpoints.CHAT, endpoints.COMPLETIONS)


async def chat_completions(request: Request) -> Response:
    return await serve(request, endpoints.CHAT)


async def completions(request: Request) -> Response:
    return await serve(request, endpoints.COMPLETIONS)


async def embeddings(request: Request) -> Response:
    return await serve(request, endpoints.EMBEDDINGS)


async def read_body(request: Request, limit: int) -> dict[str, Any]:
    """The request's JSON object, with a string `model`; else InvalidRequest naming the field."""
    raw = await bodies.read_body(request, min(MAX_BODY, limit), "a request")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if exc.msg == "depth limit exceeded":
            raise exceptions.InvalidRequest(params.TOO_DEEP) from None
        raise exceptions.InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise exceptions.InvalidRequest("The request body must be a JSON object")
    model = body.get("model")
    if model is None:
        raise exceptions.InvalidRequest(
            "you must provide a model parameter", param="model", code="missing_required_parameter"
        )
    if not isinstance(model, str) or not model:
        raise exceptions.InvalidRequest(
            "model: must be a non-empty string", param="model", code="invalid_value"
        )
    return body


def stream_of(body: dict[str, Any], endpoint: str) -> bool:
    stream = body.get("stream")
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise exceptions.InvalidRequest("stream: must be a boolean", param="stream", code="invalid_type")
    if stream and endpoint not in STREAMED:
        raise exceptions.InvalidRequest(f"{endpoint} does not stream", param="stream", code="invalid_value")
    return stream


async def serve(request: Request, endpoint: str) -> Response:
    svc, _ = await replies.context(request)
    settings = svc.settings
    body = await read_body(request, settings.max_batch_bytes)
    stream = stream_of(body, endpoint)
    model = body["model"]
    if svc.router is None:
        raise exceptions.StoreUnavailable("batchd is starting or stopping; try again shortly")
    route = svc.router.route(model)
    ends = endpoints.for_backend(
        unwrap(route.backend), strict=settings.strict, thinking_budget=settings.thinking_budget
    )
    prepared = {key: body.get(key) for key in PREFIX_FIELDS}
    if stream and isinstance(ends, Passthrough):
        return await passed_on(request, route.admit(prepared, realtime=True), ends, endpoint, body)
    try:
        async with route.admit(prepared, realtime=True), asyncio.timeout(settings.request_timeout):
            response = await ends.call(endpoint, body)
    except TimeoutError:
        timeout = exceptions.BackendTimeout(
            f"The backend did not answer within {settings.request_timeout:g}s"
        )
        return failure(timeout, request)
    except (exceptions.InvalidParams, exceptions.BackendError) as exc:
        return failure(exc, request)
    answer = response["body"]
    if isinstance(ends, Passthrough) and ends.backend.upstream_model and "model" in answer:
        answer["model"] = model  # the name the client asked for, as a stream's chunks say
    if stream:
        events = chunks.chat if endpoint == endpoints.CHAT else chunks.text
        return StreamingResponse(
            events(answer, include_usage=include_usage(body)),
            media_type="text/event-stream",
            headers=replies.headers(request),
        )
    return replies.json(answer, request, status=response["status_code"])


def failure(exc: exceptions.InvalidParams | exceptions.BackendError, request: Request) -> Response:
    """A call's failure in OpenAI's envelope: a field its backend cannot take (400, naming it), an
    upstream's own HTTP error (its status and body, as an error line has them), or batchd's view of
    a failure without one; with the retry headers the SDK reads."""
    rid = errors.request_id(request)
    if isinstance(exc, exceptions.InvalidParams):
        param = exc.param if isinstance(exc, exceptions.InvalidLine) else None
        if param == "url":  # a line's endpoint its route cannot serve: here, the model's route
            param = "model"
        return errors.render(exceptions.InvalidRequest(exc.message, param=param), rid, openai=True)
    headers = replies.headers(request)
    if exc.retry_after is not None:
        headers["retry-after"] = f"{max(0, round(exc.retry_after))}"
    headers["x-should-retry"] = "true" if exc.retryable else "false"
    if isinstance(exc, exceptions.UpstreamStatus):
        return Response(
            orjson.dumps(error_body(exc)),
            status_code=exc.status,
            media_type="application/json",
            headers=headers,
        )
    return errors.render(exc, rid, headers, openai=True)


class Held(StreamingResponse):
    """A stream that lets go of what it holds (the route's slot, the upstream's answer) when it ends,
    even if it never started (the client left first)."""

    def __init__(
        self, content: AsyncIterator[bytes], release: Callable[[], Awaitable[None]], **kw: Any
    ) -> None:
        super().__init__(content, **kw)
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.release()


async def passed_on(
    request: Request,
    admission: contextlib.AbstractAsyncContextManager[None],
    ends: Passthrough,
    endpoint: str,
    body: dict[str, Any],
) -> Response:
    """An OpenAI-compatible upstream's stream, passed on while the route's slot is held."""
    held = contextlib.AsyncExitStack()
    await held.enter_async_context(admission)
    try:
        events = await streamed.open_stream(ends, endpoint, body)
    except BaseException as exc:  # through the admission, which learns from an overload (adaptive.py)
        await held.__aexit__(type(exc), exc, exc.__traceback__)
        if isinstance(exc, exceptions.BackendError):
            return failure(exc, request)
        raise
    held.push_async_callback(events.aclose)
    model = body["model"] if ends.backend.upstream_model else None
    return Held(
        relayed(events, endpoint, model, include_usage(body)),
        held.aclose,
        media_type="text/event-stream",
        headers=replies.headers(request),
    )


async def relayed(
    events: streamed.Events, endpoint: str, model: str | None, usage: bool
) -> AsyncIterator[bytes]:
    """The upstream's events as they come, `model` (when not None) put back into each chunk; an
    upstream that answered whole (it does not stream) as chunks built from it; a failure on the
    way as one `data: {"error": …}` event, which the openai SDK raises."""
    try:
        async for name, data in events:
            if name == sse.WHOLE:
                answer = orjson.loads(data)
                if model is not None:
                    answer["model"] = model
                for chunk in (chunks.chat if endpoint == endpoints.CHAT else chunks.text)(
                    answer, include_usage=usage
                ):
                    yield chunk
                return
            if model is not None:
                data = streamed.mapped(data, model)
            named = b"" if name == "message" else b"event: " + name.encode() + b"\n"
            yield named + b"data: " + data.encode() + b"\n\n"
    except (exceptions.BackendError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        message = (
            exc.message
            if isinstance(exc, exceptions.BackendError)
            else f"The upstream answered nonsense: {exc}"
        )
        yield chunks.event(endpoints.envelope(message, "server_error"))


def include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True
