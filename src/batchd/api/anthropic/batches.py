"""Handlers for /v1/messages/batches: create, retrieve, list, cancel, delete, results."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from batchd import exceptions, models
from batchd.api import auth, bodies, errors, idempotency, responses, services
from batchd.api.anthropic import paging, schemas, version

OFFLOAD_BYTES = 1 << 20  # create bodies at least this large are decoded off the event loop


async def _ctx(request: Request) -> tuple[services.Services, str]:
    found = services.of(request)
    workspace = await auth.workspace(request)
    version.check(request, found.settings)
    return found, workspace


def _batch_id(request: Request) -> str:
    """The batch id of the path: an OpenAI batch's (`batch_…`) is no Message Batch, and not found."""
    batch_id: str = request.path_params["batch_id"]
    if models.is_openai_batch(batch_id):
        raise exceptions.BatchNotFound(f"message batch {batch_id} not found")
    return batch_id


async def create(request: Request) -> Response:
    svc, workspace = await _ctx(request)
    settings = svc.settings
    quota = await idempotency.admit(request, svc, workspace)  # a full one is refused before its body is read
    body = await bodies.read_body(request, settings.max_batch_bytes)
    if len(body) < OFFLOAD_BYTES:
        parsed = schemas.decode_create(body, settings.max_requests)
    else:
        # ~1.4 s per GB of decoding and checking: on a thread, the event loop keeps serving other
        # calls in between (GIL switch interval) instead of stalling ~140 ms on a 100 MB body.
        parsed = await asyncio.to_thread(schemas.decode_create, body, settings.max_requests)
    idem = await idempotency.key_of(request, body, settings.idempotency_window)
    now = time.time()
    batch = await svc.store.create_batch(
        workspace=workspace,
        custom_ids=[r.custom_id for r in parsed.requests],
        params=[r.params for r in parsed.requests],
        now=now,
        expires_at=now + settings.batch_lifetime,
        quota=quota,
        idempotency=idem,
    )
    idempotency.committed(idem)
    if batch.created_at == now:  # else an Idempotency-Key's replay: counted when it was created
        svc.metrics.batch_created(len(parsed.requests), len(body))
    del parsed, body
    if svc.engine is not None:
        svc.engine.wake()
    return responses.json(schemas.batch(batch, settings.public_url, strict=settings.strict), request)


async def retrieve(request: Request) -> Response:
    svc, workspace = await _ctx(request)
    batch = await svc.store.get_batch(workspace, _batch_id(request))
    return responses.json(schemas.batch(batch, svc.settings.public_url, strict=svc.settings.strict), request)


async def list_batches(request: Request) -> Response:
    svc, workspace = await _ctx(request)
    query = request.query_params
    after_id, before_id = query.get("after_id") or None, query.get("before_id") or None
    if after_id and before_id:
        raise exceptions.InvalidRequest("Only one of after_id and before_id may be given")
    for cursor in (after_id, before_id):
        if cursor and models.is_openai_batch(cursor):
            raise exceptions.BatchNotFound(f"message batch {cursor} not found")
    batches, has_more = await svc.store.list_batches(
        workspace, after_id=after_id, before_id=before_id, limit=paging.limit(query.get("limit"))
    )
    return responses.json(
        schemas.page(batches, has_more, svc.settings.public_url, strict=svc.settings.strict), request
    )


async def cancel(request: Request) -> Response:
    svc, workspace = await _ctx(request)
    batch = await svc.store.cancel_batch(workspace, _batch_id(request), time.time())
    return responses.json(schemas.batch(batch, svc.settings.public_url, strict=svc.settings.strict), request)


async def delete(request: Request) -> Response:
    svc, workspace = await _ctx(request)
    batch_id = _batch_id(request)
    await svc.store.delete_batch(workspace, batch_id)
    return responses.json(schemas.deleted(batch_id), request)


async def results(request: Request) -> Response:
    svc, workspace = await _ctx(request)
    batch_id = _batch_id(request)
    chunks = svc.store.iter_results(workspace, batch_id)
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
