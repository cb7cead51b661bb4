"""Handlers for /v1/batches in OpenAI's Batch API shape (the spec's §3): create, retrieve, list
(newest first; `after`, `limit` 1…100, default 20) and cancel. No delete, no results route: a batch's
results are its output and error files (files.py, outputs.py).

The create checks the input file inside the request (lines.py) and commits the batch's row and its
engine batch in one transaction: it answers `in_progress`, or `failed` with the problems listed by
line, never a batch half made (docs/openai.md says why it does not validate later).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from batchd import exceptions, models
from batchd.api import bodies, quotas, services
from batchd.api.openai import lines, objects, outputs, replies
from batchd.store.openai import OpenAIBatch, OpenAIBatchRow

ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
WINDOW = "24h"
MAX_CREATE_BODY = 64 * 1024
MAX_METADATA, MAX_KEY, MAX_VALUE = 16, 64, 512
DEFAULT_OUTPUT_EXPIRY = 30 * 86400  #: seconds output and error files are kept by default
MIN_EXPIRY, MAX_EXPIRY = 3600, 30 * 86400
OFFLOAD_BYTES = 1 << 20  # input files at least this large are checked off the event loop


async def create(request: Request) -> Response:
    svc, workspace = await replies.context(request)
    body = _decode(await bodies.read_body(request, MAX_CREATE_BODY, "a batch create"))
    asked = _checked_create(body)
    quota = await quotas.admit(svc, workspace)
    source = await svc.store.get_openai_file(workspace, asked["input_file_id"], now=time.time())
    if source is None:
        raise exceptions.InvalidRequest(
            f"No such File object: {asked['input_file_id']}", param="input_file_id"
        )
    if source.purpose != "batch":
        raise exceptions.InvalidRequest(
            f"File {source.id} has purpose '{source.purpose}': "
            "a batch's input file must have purpose 'batch'.",
            param="input_file_id",
        )
    data = bytearray()
    async for chunk in svc.store.iter_openai_chunks(source.id):
        data += chunk
    max_tasks = min(lines.MAX_TASKS, svc.settings.max_requests)
    if len(data) < OFFLOAD_BYTES:
        checked = lines.check(data, asked["endpoint"], max_tasks=max_tasks)
    else:
        checked = await asyncio.to_thread(lines.check, data, asked["endpoint"], max_tasks=max_tasks)
    size = len(data)
    del data
    now = time.time()
    batch = OpenAIBatch(
        id=models.new_openai_batch_id(),
        workspace=workspace,
        input_file_id=source.id,
        endpoint=asked["endpoint"],
        completion_window=WINDOW,
        metadata=None if asked.get("metadata") is None else orjson.dumps(asked["metadata"]).decode(),
        model=checked.model if not checked.errors else None,
        created_at=now,
        expires_at=now + svc.settings.batch_lifetime,
        failed_at=now if checked.errors else None,
        errors=orjson.dumps(checked.errors).decode() if checked.errors else None,
        output_expires_after=asked["output_expires_after"],
        output_file_id=models.new_openai_file_id(),
        error_file_id=models.new_openai_file_id(),
    )
    await svc.store.create_openai_batch(
        batch, custom_ids=checked.custom_ids, params=checked.params, quota=quota
    )
    if not checked.errors:
        svc.metrics.batch_created(len(checked.params), size)
        if svc.engine is not None:
            svc.engine.wake()
    return replies.json(objects.batch_object(await _load(svc, workspace, batch.id)), request)


def _decode(body: bytes | bytearray) -> dict[str, Any]:
    try:
        found = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise exceptions.InvalidRequest("The body is not valid JSON.") from None
    if not isinstance(found, dict):
        raise exceptions.InvalidRequest("The body must be a JSON object.")
    return found


def _checked_create(body: dict[str, Any]) -> dict[str, Any]:
    """The create's fields, checked (unknown extra keys are ignored, as OpenAI does)."""
    for name in ("input_file_id", "endpoint", "completion_window"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise exceptions.InvalidRequest(f"Missing required parameter: '{name}'.", param=name)
    if body["endpoint"] not in ENDPOINTS:
        raise exceptions.InvalidRequest(
            f"Invalid value for 'endpoint': '{body['endpoint']}'. "
            f"Supported endpoints: {', '.join(ENDPOINTS)}.",
            param="endpoint",
            code="invalid_value",
        )
    if body["completion_window"] != WINDOW:
        raise exceptions.InvalidRequest(
            f"Invalid value for 'completion_window': '{body['completion_window']}'. Supported: '24h'.",
            param="completion_window",
            code="invalid_value",
        )
    metadata = body.get("metadata")
    if metadata is not None and not _good_metadata(metadata):
        raise exceptions.InvalidRequest(
            f"metadata must be an object of at most {MAX_METADATA} string pairs, keys of at most "
            f"{MAX_KEY} characters and values of at most {MAX_VALUE}.",
            param="metadata",
            code="invalid_value",
        )
    expiry = body.get("output_expires_after")
    seconds: object = DEFAULT_OUTPUT_EXPIRY
    if expiry is not None:
        if not isinstance(expiry, dict) or expiry.get("anchor") != "created_at":
            raise exceptions.InvalidRequest(
                "output_expires_after.anchor must be 'created_at'.", param="output_expires_after.anchor"
            )
        seconds = expiry.get("seconds")
        if (
            not isinstance(seconds, int)
            or isinstance(seconds, bool)
            or not MIN_EXPIRY <= seconds <= MAX_EXPIRY
        ):
            raise exceptions.InvalidRequest(
                f"output_expires_after.seconds must be an integer from {MIN_EXPIRY} to {MAX_EXPIRY}.",
                param="output_expires_after.seconds",
            )
    assert isinstance(seconds, int)
    return {**body, "output_expires_after": float(seconds)}


def _good_metadata(metadata: object) -> bool:
    return (
        isinstance(metadata, dict)
        and len(metadata) <= MAX_METADATA
        and all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= MAX_KEY and len(v) <= MAX_VALUE
            for k, v in metadata.items()
        )
    )


async def _load(svc: services.Services, workspace: str, batch_id: str) -> OpenAIBatchRow:
    """The workspace's batch, closed first if its engine batch has ended (outputs.close)."""
    row = await svc.store.get_openai_batch(workspace, batch_id)
    if row is None:
        raise exceptions.NotFound(f"No such Batch object: {batch_id}", param="batch_id")
    if objects.ended(row):
        await outputs.close(svc, row)
        row = await svc.store.get_openai_batch(workspace, batch_id)
        assert row is not None
    return row


async def retrieve(request: Request) -> Response:
    svc, workspace = await replies.context(request)
    row = await _load(svc, workspace, request.path_params["batch_id"])
    return replies.json(objects.batch_object(row), request)


async def list_batches(request: Request) -> Response:
    svc, workspace = await replies.context(request)
    query = request.query_params
    raw = query.get("limit") or "20"
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise exceptions.InvalidRequest("limit must be an integer from 1 to 100.", param="limit")
    rows, has_more = await svc.store.list_openai_batches(
        workspace, after_id=query.get("after") or None, limit=int(raw)
    )
    data = []
    for row in rows:
        if objects.ended(row):
            row = await _load(svc, workspace, row.id)
        data.append(objects.batch_object(row))
    return replies.json(objects.page(data, has_more), request)


async def cancel(request: Request) -> Response:
    svc, workspace = await replies.context(request)
    row = await _load(svc, workspace, request.path_params["batch_id"])
    state = objects.status(row)
    if state in objects.TERMINAL:
        raise exceptions.Conflict(f"Cannot cancel a batch with status '{state}'.")
    if state != "cancelling":
        try:
            await svc.store.cancel_batch(workspace, row.id, time.time())
        except exceptions.InvalidBatchState:  # it ended meanwhile
            row = await _load(svc, workspace, row.id)
            raise exceptions.Conflict(f"Cannot cancel a batch with status '{objects.status(row)}'.") from None
        row = await _load(svc, workspace, row.id)
    return replies.json(objects.batch_object(row), request)
