"""Handlers for /v1/messages/batches: create, retrieve, list, cancel, delete, results."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from batchd import exceptions
from batchd.api import auth, errors
from batchd.api.anthropic import schemas
from batchd.config import Settings
from batchd.store import Store

OFFLOAD_BYTES = 1 << 20  # create bodies at least this large are decoded off the event loop


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
    if len(body) < OFFLOAD_BYTES:
        parsed = schemas.decode_create(body, settings.max_requests)
    else:
        # ~1.4 s per GB of decoding and checking: on a thread, the event loop keeps serving other
        # calls in between (GIL switch interval) instead of stalling ~140 ms on a 100 MB body.
        parsed = await asyncio.to_thread(schemas.decode_create, body, settings.max_requests)
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
    return JsonlStream(
        first,
        chunks,
        headers={
            "request-id": errors.request_id(request),
            "content-disposition": f"attachment; filename*=utf-8''{batch_id}_results.jsonl",
        },
    )


class JsonlStream(Response):
    """Sends `first`, then the rest of `chunks`, reading each next chunk from the store while the
    one before it is on the wire; stops reading once the client has gone.

    Plain asyncio rather than StreamingResponse, whose disconnect watch runs in an anyio task
    group: that costs a first download ~10 ms of lazy imports, and it reads one chunk at a time.
    """

    media_type = "application/x-jsonl"

    def __init__(self, first: bytes, chunks: AsyncIterator[bytes], headers: dict[str, str]) -> None:
        self.first = first
        self.chunks = chunks
        super().__init__(None, headers=headers)
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.ensure_future(_disconnected(receive))
        upcoming: asyncio.Future[bytes] | None = None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            chunk = self.first
            while chunk:
                upcoming = asyncio.ensure_future(anext(self.chunks, b""))
                upcoming.add_done_callback(_retrieve)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if gone.done():
                    return  # the cancel below stops the store read and ends the generator
                chunk = await upcoming
            upcoming = None
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            gone.cancel()
            if upcoming is not None:
                upcoming.cancel()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _retrieve(future: asyncio.Future[bytes]) -> None:
    """Marks a failure of a read nobody awaits any more (the client left) as seen."""
    if not future.cancelled():
        future.exception()
