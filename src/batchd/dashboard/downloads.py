"""The dashboard's downloads of a batch, each streamed as JSONL:

- `/batches/{id}/results.jsonl`: every result, the very bytes of the API's
  `GET /v1/messages/batches/{id}/results` (the same store call, the same response class);
- `/batches/{id}/results.jsonl?type=errored`: only the results of one type, in create order;
- `/batches/{id}/retry.jsonl`: the failed requests (`errored` and `expired`, or the `type`s named)
  as a requests file `batchd submit` and the dashboard's upload take: one
  `{"custom_id": …, "params": …}` per line, with the params the batch was created with.

Each needs the visitor's workspace, as every page does; another's batch is a 404.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response

from batchd import exceptions, models
from batchd.api import services
from batchd.api.anthropic.batches import JsonlStream
from batchd.dashboard import views

PAGE = 1000  # requests read per store call
RETRY_TYPES = (models.ResultType.ERRORED, models.ResultType.EXPIRED)


def _types(request: Request, default: tuple[models.ResultType, ...]) -> tuple[models.ResultType, ...]:
    named = [t for t in request.query_params.getlist("type") if t]
    try:
        return tuple(models.ResultType(t) for t in named) or default
    except ValueError:
        raise exceptions.InvalidRequest(f"type: must be one of {', '.join(views.RESULT_TYPES)}") from None


async def _stream(request: Request, chunks: AsyncIterator[bytes], filename: str) -> Response:
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    return JsonlStream(
        first, chunks, headers={"content-disposition": f"attachment; filename*=utf-8''{filename}"}
    )


async def _workspace(request: Request) -> str:
    workspace = await views.workspace_of(request)
    if workspace is None:
        raise exceptions.AuthenticationFailed("the dashboard needs an API key: log in at /login")
    return workspace


@views.html_errors
async def results(request: Request) -> Response:
    workspace = await _workspace(request)
    store = services.of(request).store
    batch_id = request.path_params["batch_id"]
    types = _types(request, ())
    if not types:
        return await _stream(request, store.iter_results(workspace, batch_id), f"{batch_id}_results.jsonl")
    await store.get_batch(workspace, batch_id)  # a 404 before the answer starts
    names = "_".join(t.value for t in types)
    return await _stream(request, _lines_of(request, workspace, batch_id, types), f"{batch_id}_{names}.jsonl")


async def _lines_of(
    request: Request, workspace: str, batch_id: str, types: tuple[models.ResultType, ...]
) -> AsyncIterator[bytes]:
    """The result lines of `types`, in create order, a page at a time."""
    store = services.of(request).store
    for result_type in types if len(types) == 1 else (None,):
        after: int | None = None
        more = True
        while more:
            page, more = await store.list_results(
                workspace, batch_id, after_index=after, limit=PAGE, result_type=result_type
            )
            lines = [e.line for e in page if e.line is not None and e.result_type in types]
            if lines:
                yield b"".join(lines)
            if page:
                after = page[-1].index


@views.html_errors
async def retry(request: Request) -> Response:
    workspace = await _workspace(request)
    store = services.of(request).store
    batch_id = request.path_params["batch_id"]
    types = _types(request, RETRY_TYPES)
    await store.get_batch(workspace, batch_id)
    return await _stream(
        request, _retry_lines(request, workspace, batch_id, types), f"{batch_id}_retry.jsonl"
    )


async def _retry_lines(
    request: Request, workspace: str, batch_id: str, types: tuple[models.ResultType, ...]
) -> AsyncIterator[bytes]:
    store = services.of(request).store
    after: int | None = None
    more = True
    while more:
        page, more = await store.list_params(
            workspace, batch_id, result_types=types, after_index=after, limit=PAGE
        )
        # The params as created may span lines (a pretty-printed body): made one line again.
        chunk = b"".join(
            orjson.dumps({"custom_id": e.custom_id, "params": orjson.Fragment(_one_line(e.params))}) + b"\n"
            for e in page
        )
        if chunk:
            yield chunk
        if page:
            after = page[-1].index


def _one_line(params: bytes) -> bytes:
    return params if b"\n" not in params and b"\r" not in params else orjson.dumps(orjson.loads(params))
