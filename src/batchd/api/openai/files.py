"""Handlers for /v1/files in OpenAI's Files API shape (the spec's §2), for the Batch API: uploads of
`purpose=batch` input files (`.jsonl`, at most MAX_BATCH_FILE bytes, kept 30 days unless
`expires_after` says otherwise) and the `batch_output` files of batches (outputs.py).

`POST /v1/files`, `GET /v1/files` (`after`, `limit` 1…10,000, `order`, `purpose`),
`GET /v1/files/{file_id}`, `GET /v1/files/{file_id}/content` (streamed) and
`DELETE /v1/files/{file_id}`. A file is its workspace's alone: any other id is 404. The same paths
serve Anthropic's Files API too: app.py picks by api/wires.py.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from batchd import exceptions, models
from batchd.api import services
from batchd.api.openai import objects, outputs, replies, upload
from batchd.store.openai import OpenAIFile

MAX_BATCH_FILE = 200 << 20  #: bytes of a `purpose=batch` upload: OpenAI's "200 MB", read leniently as MiB
DEFAULT_EXPIRY = 30 * 86400  #: seconds a batch input file is kept when `expires_after` is not given
MIN_EXPIRY, MAX_EXPIRY = 3600, 30 * 86400  #: bounds of expires_after[seconds]
MAX_LIST = 10_000
PURPOSES = ("batch",)  #: purposes an upload may have here (output files are `batch_output`)


async def upload_file(request: Request) -> Response:
    svc, workspace = await replies.context(request)
    now = time.time()
    file = OpenAIFile(models.new_openai_file_id(), workspace, "upload", "batch", 0, now, None)
    got = await upload.receive(request, svc.store, file, limit=MAX_BATCH_FILE)
    try:
        purpose, expires_at = _checked(got, now)
        file = file._replace(filename=got.filename, purpose=purpose, bytes=got.size, expires_at=expires_at)
    except exceptions.ApiError:
        await svc.store.drop_openai_file(file.id)
        raise
    await svc.store.complete_openai_file(file)
    svc.metrics.file_uploaded(file.bytes)
    return replies.json(objects.file_object(file), request)


def _checked(got: upload.Received, now: float) -> tuple[str, float]:
    """The purpose and expires_at the form asks for; raises InvalidRequest for what it may not."""
    purpose = got.fields.get("purpose")
    if not purpose:
        raise exceptions.InvalidRequest("Missing required parameter: 'purpose'.", param="purpose")
    if purpose not in PURPOSES:
        raise exceptions.InvalidRequest(
            f"Invalid value for 'purpose': '{purpose}'. batchd serves the Batch API: supported is 'batch'.",
            param="purpose",
            code="invalid_value",
        )
    if not got.filename.lower().endswith(".jsonl"):
        raise exceptions.InvalidRequest("Invalid file format for Batch API. Must be .jsonl")
    anchor, seconds = got.fields.get("expires_after[anchor]"), got.fields.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return purpose, now + DEFAULT_EXPIRY
    if anchor != "created_at":
        raise exceptions.InvalidRequest(
            "expires_after[anchor] must be 'created_at'.", param="expires_after.anchor"
        )
    if seconds is None or not seconds.isdigit() or not MIN_EXPIRY <= int(seconds) <= MAX_EXPIRY:
        raise exceptions.InvalidRequest(
            f"expires_after[seconds] must be an integer from {MIN_EXPIRY} to {MAX_EXPIRY}.",
            param="expires_after.seconds",
        )
    return purpose, now + int(seconds)


async def find(svc: services.Services, workspace: str, file_id: str) -> OpenAIFile:
    """The workspace's file; closes the batch first when it is an output file of an ended one."""
    now = time.time()
    found = await svc.store.get_openai_file(workspace, file_id, now=now)
    if found is None:
        batch = await svc.store.find_openai_output(workspace, file_id)
        if batch is not None and objects.ended(batch):
            await outputs.close(svc, batch)
            found = await svc.store.get_openai_file(workspace, file_id, now=now)
    if found is None:
        raise exceptions.NotFound(f"No such File object: {file_id}", param="id")
    return found


async def retrieve(request: Request) -> Response:
    svc, workspace = await replies.context(request)
    found = await find(svc, workspace, request.path_params["file_id"])
    return replies.json(objects.file_object(found), request)


async def content(request: Request) -> Response:
    svc, workspace = await replies.context(request)
    found = await find(svc, workspace, request.path_params["file_id"])
    chunks: AsyncIterator[bytes]
    if found.purpose == "batch_output":
        batch = await svc.store.find_openai_output(workspace, found.id)
        if batch is None:
            raise exceptions.NotFound(f"No such File object: {found.id}", param="id")
        chunks = outputs.lines(svc, batch, output=found.id == batch.output_file_id)
    else:
        chunks = svc.store.iter_openai_chunks(found.id)
    headers = {**replies.headers(request), "content-disposition": f'attachment; filename="{found.filename}"'}
    if found.purpose != "batch_output":
        headers["content-length"] = str(found.bytes)  # an output file is rendered as it streams
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)


async def delete(request: Request) -> Response:
    svc, workspace = await replies.context(request)
    file_id = request.path_params["file_id"]
    await find(svc, workspace, file_id)  # an expired file is gone: 404, as a deleted one
    if not await svc.store.delete_openai_file(workspace, file_id):
        raise exceptions.NotFound(f"No such File object: {file_id}", param="id")
    return replies.json({"id": file_id, "object": "file", "deleted": True}, request)


async def list_files(request: Request) -> Response:
    svc, workspace = await replies.context(request)
    query = request.query_params
    limit = _limit(query.get("limit"), MAX_LIST)
    order = query.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise exceptions.InvalidRequest("order must be 'asc' or 'desc'.", param="order", code="invalid_value")
    for batch in await svc.store.unclosed_openai_batches(workspace):  # their files are listed once closed
        await outputs.close(svc, batch)
    now = time.time()
    after = None
    if query.get("after"):
        after = await svc.store.get_openai_file(workspace, query["after"], now=now)
        if after is None:
            raise exceptions.InvalidRequest(f"after: no such File object: {query['after']}", param="after")
    found = await svc.store.list_openai_files(
        workspace,
        now=now,
        limit=limit + 1,
        after=after,
        ascending=order == "asc",
        purpose=query.get("purpose") or None,
    )
    data = [objects.file_object(f) for f in found[:limit]]
    return replies.json(objects.page(data, len(found) > limit), request)


def _limit(raw: str | None, most: int, default: int | None = None) -> int:
    if raw is None or raw == "":
        return default or most
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise exceptions.InvalidRequest(f"limit must be an integer from 1 to {most}.", param="limit")
    return int(raw)
