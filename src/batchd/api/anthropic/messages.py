"""`POST /v1/messages`: one synchronous call through the same routes as the batches.

The body is validated by `params.prepare` as a batch request's params are (same errors, same
shorthand). `stream: true` is answered as Server-Sent Events in Anthropic's event order, built
from the complete Message once the backend has answered (the backends are non-streaming): the
events are exact, only their timing is not incremental.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from batchd import exceptions, params
from batchd.api import auth, bodies, errors, responses, services
from batchd.tools import scope

MAX_BODY = 32 * 1024 * 1024  # bytes, as Anthropic's Messages API


async def create(request: Request) -> Response:
    svc = services.of(request)
    settings = svc.settings
    scope.workspace.set(auth.workspace(request, settings.api_keys))  # whose containers and files
    body = await bodies.read_body(request, min(MAX_BODY, settings.max_batch_bytes))
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if exc.msg == "depth limit exceeded":  # orjson's own limit, 1024 levels
            raise exceptions.InvalidRequest(params.TOO_DEEP) from None
        raise exceptions.InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise exceptions.InvalidRequest("The request body must be a JSON object")
    stream = raw.pop("stream", False)
    if not isinstance(stream, bool):
        raise exceptions.InvalidRequest("stream: Input should be a valid boolean")
    try:
        prepared = params.prepare(
            raw, strict=settings.strict, default_thinking_budget=settings.thinking_budget
        )
    except exceptions.InvalidParams as exc:
        raise exceptions.InvalidRequest(exc.message) from None
    router = svc.router
    if router is None:
        raise exceptions.StoreUnavailable("batchd is starting or stopping; try again shortly")
    route = router.route(prepared["model"])
    betas = [b.strip() for b in request.headers.get("anthropic-beta", "").split(",") if b.strip()]
    rid = errors.request_id(request)
    try:
        async with route.admit(prepared), asyncio.timeout(settings.request_timeout):
            message = await route.backend.create_message(prepared, betas=betas)
    except TimeoutError:
        timeout = exceptions.BackendTimeout(
            f"The backend did not answer within {settings.request_timeout:g}s"
        )
        return errors.render(timeout, rid)
    except exceptions.BackendError as exc:
        headers = {}
        if exc.retry_after is not None:
            headers["retry-after"] = f"{max(0, round(exc.retry_after))}"
        if not exc.retryable:
            headers["x-should-retry"] = "false"
        return errors.render(exc, rid, headers)
    if stream:
        return StreamingResponse(
            _events(message), media_type="text/event-stream", headers={"request-id": rid}
        )
    return responses.json(message, request)


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps({"type": event, **data}) + b"\n\n"


async def _events(message: dict[str, Any]) -> AsyncIterator[bytes]:
    """A complete Message as Anthropic's stream of events."""
    usage = message.get("usage") or {}
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**usage, "output_tokens": 0}
    yield _sse("message_start", {"message": start})
    for index, block in enumerate(message.get("content") or []):
        kind = block.get("type")
        if kind == "text":
            yield _sse("content_block_start", {"index": index, "content_block": {**block, "text": ""}})
            yield _sse(
                "content_block_delta",
                {"index": index, "delta": {"type": "text_delta", "text": block["text"]}},
            )
        elif kind == "thinking":
            empty = {**block, "thinking": "", "signature": ""}
            yield _sse("content_block_start", {"index": index, "content_block": empty})
            yield _sse(
                "content_block_delta",
                {"index": index, "delta": {"type": "thinking_delta", "thinking": block["thinking"]}},
            )
            yield _sse(
                "content_block_delta",
                {
                    "index": index,
                    "delta": {"type": "signature_delta", "signature": block.get("signature", "")},
                },
            )
        elif kind in ("tool_use", "server_tool_use"):
            yield _sse("content_block_start", {"index": index, "content_block": {**block, "input": {}}})
            partial = orjson.dumps(block.get("input", {})).decode()
            yield _sse(
                "content_block_delta",
                {"index": index, "delta": {"type": "input_json_delta", "partial_json": partial}},
            )
        else:
            yield _sse("content_block_start", {"index": index, "content_block": block})
        yield _sse("content_block_stop", {"index": index})
    delta = {"stop_reason": message.get("stop_reason"), "stop_sequence": message.get("stop_sequence")}
    yield _sse("message_delta", {"delta": delta, "usage": {"output_tokens": usage.get("output_tokens", 0)}})
    yield _sse("message_stop", {})
