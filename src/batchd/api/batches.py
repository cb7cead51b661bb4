"""Handlers for /v1/messages/batches: create, retrieve, list, cancel, delete, results."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from batchd import exceptions
from batchd.api import auth, errors, schemas
from batchd.config import Settings
from batchd.store import Store


def _json(data: Any, request: Request, status: int = 200) -> Response:
    return Response(
        orjson.dumps(data),
        status_code=status,
        media_type="application/json",
        headers={"request-id": errors.request_id(request)},
    )


def _ctx(request: Request) -> tuple[Settings, Store, str]:
    settings: Settings = request.app.state.settings
    return settings, request.app.state.store, auth.workspace(request, settings.api_keys)


async def read_body(request: Request, limit: int) -> bytearray:
    """The whole body, refusing (413) as soon as it passes `limit` bytes."""
    too_large = exceptions.RequestTooLarge(
        f"Request exceeds the maximum allowed number of bytes ({limit}) for a message batch"
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return body


async def create(request: Request) -> Response:
    settings, store, workspace = _ctx(request)
    body = await read_body(request, settings.max_batch_bytes)
    parsed = schemas.decode_create(body, settings.max_requests)
    now = time.time()
    batch = await store.create_batch(
        workspace=workspace,
        custom_ids=[r.custom_id for r in parsed.requests],
        params=[r.params for r in parsed.requests],  # type: ignore[misc]
        now=now,
        expires_at=now + settings.batch_lifetime,
    )
    request.app.state.metrics.batch_created(len(parsed.requests), len(body))
    del parsed, body
    engine = request.app.state.engine
    if engine is not None:
        engine.wake()
    return _json(schemas.batch(batch, settings.public_url), request)


async def retrieve(request: Request) -> Response:
    settings, store, workspace = _ctx(request)
    batch = await store.get_batch(workspace, request.path_params["batch_id"])
    return _json(schemas.batch(batch, settings.public_url), request)


def _limit(raw: str | None) -> int:
    if raw is None:
        return 20
    try:
        limit = int(raw)
    except ValueError:
        raise exceptions.InvalidRequest(f"limit: Input should be a valid integer, got {raw!r}") from None
    if not 1 <= limit <= 1000:
        raise exceptions.InvalidRequest(f"limit: Input should be between 1 and 1000, got {limit}")
    return limit


async def list_batches(request: Request) -> Response:
    settings, store, workspace = _ctx(request)
    query = request.query_params
    after_id, before_id = query.get("after_id") or None, query.get("before_id") or None
    if after_id and before_id:
        raise exceptions.InvalidRequest("Only one of after_id and before_id may be given")
    batches, has_more = await store.list_batches(
        workspace, after_id=after_id, before_id=before_id, limit=_limit(query.get("limit"))
    )
    return _json(schemas.page(batches, has_more, settings.public_url), request)


async def cancel(request: Request) -> Response:
    settings, store, workspace = _ctx(request)
    batch = await store.cancel_batch(workspace, request.path_params["batch_id"], time.time())
    return _json(schemas.batch(batch, settings.public_url), request)


async def delete(request: Request) -> Response:
    _, store, workspace = _ctx(request)
    batch_id = request.path_params["batch_id"]
    await store.delete_batch(workspace, batch_id)
    return _json(schemas.deleted(batch_id), request)


async def results(request: Request) -> Response:
    _, store, workspace = _ctx(request)
    batch_id = request.path_params["batch_id"]
    chunks = store.iter_results(workspace, batch_id)
    # Pull the first chunk before answering so a state error still gets a proper status.
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""

    async def body() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in chunks:
            yield chunk

    return StreamingResponse(
        body(),
        media_type="application/x-jsonl",
        headers={
            "request-id": errors.request_id(request),
            "content-disposition": f"attachment; filename*=utf-8''{batch_id}_results.jsonl",
        },
    )
