"""The dashboard's downloads of a batch, each streamed as JSONL:

- `/batches/{id}/results.jsonl`: every result, the very bytes of the API's
  `GET /v1/messages/batches/{id}/results` (the same store call, the same response class);
- `/batches/{id}/results.jsonl?type=errored`: only the results of one type, in create order;
- `/batches/{id}/retry.jsonl`: the failed requests (`errored` and `expired`, or the `type`s named)
  as a requests file `batchd submit` and the dashboard's upload take: one
  `{"custom_id": …, "params": …}` per line, with the params the batch was created with.

An OpenAI batch's downloads are OpenAI-shaped (api/openai/outputs.py renders every line, a canceled
or expired request as a `batch_cancelled` / `batch_expired` error line):

- `/batches/{id}/results.jsonl?file=output` and `?file=error`: the very bytes of its output and
  error files' `GET /v1/files/{id}/content` (the same function makes them);
- `/batches/{id}/results.jsonl` (and `?type=…`): every line (of those types) in create order;
- `/batches/{id}/retry.jsonl`: the failed requests' input lines, as uploaded, a file `batchd
  submit` takes as OpenAI input (cli/openai_submit.py).

Each needs the visitor's workspace, as every page does; another's batch is a 404.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from batchd import exceptions, models
from batchd.api import services
from batchd.api.anthropic.batches import JsonlStream
from batchd.api.openai import outputs
from batchd.dashboard import kinds, views
from batchd.store import layout
from batchd.store.base import RequestEntry
from batchd.store.openai import OpenAIBatchRow

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


FILES = ("output", "error")  # an OpenAI batch's `?file=`


async def _openai(request: Request, workspace: str, batch_id: str) -> OpenAIBatchRow:
    """The workspace's OpenAI batch `batch_id`, with its engine batch (a 404 otherwise)."""
    svc = services.of(request)
    await svc.store.get_batch(workspace, batch_id)
    row = await kinds.openai_row(svc, workspace, batch_id)
    if row is None or row.engine_seq is None:
        raise exceptions.BatchNotFound(f"batch {batch_id} not found")
    return row


@views.html_errors
async def results(request: Request) -> Response:
    workspace = await _workspace(request)
    store = services.of(request).store
    batch_id = request.path_params["batch_id"]
    types = _types(request, ())
    if models.is_openai_batch(batch_id):
        return await _openai_results(request, workspace, batch_id, types)
    if not types:
        return await _stream(request, store.iter_results(workspace, batch_id), f"{batch_id}_results.jsonl")
    await store.get_batch(workspace, batch_id)  # a 404 before the answer starts
    names = "_".join(t.value for t in types)
    return await _stream(request, _lines_of(request, workspace, batch_id, types), f"{batch_id}_{names}.jsonl")


async def _openai_results(
    request: Request, workspace: str, batch_id: str, types: tuple[models.ResultType, ...]
) -> Response:
    which = request.query_params.get("file")
    if which not in (None, *FILES):
        raise exceptions.InvalidRequest(f"file: must be one of {', '.join(FILES)}")
    row = await _openai(request, workspace, batch_id)
    svc = services.of(request)
    if which is not None:  # the API's filenames (files.py)
        chunks = outputs.lines(svc, row, output=which == "output")
        return await _stream(request, chunks, f"{batch_id}_{which}.jsonl")
    seq = row.engine_seq
    assert seq is not None

    def rendered(e: RequestEntry) -> bytes:
        assert e.line is not None and e.result_type is not None
        return outputs.render(batch_id, layout.key(seq, e.index), e.result_type.value, e.line)

    names = "_".join(t.value for t in types) or "results"
    every = types or tuple(models.ResultType)
    lines = _lines_of(request, workspace, batch_id, every, rendered)
    return await _stream(request, lines, f"{batch_id}_{names}.jsonl")


def _stored(e: RequestEntry) -> bytes:
    assert e.line is not None
    return e.line


async def _lines_of(
    request: Request,
    workspace: str,
    batch_id: str,
    types: tuple[models.ResultType, ...],
    shown: Callable[[RequestEntry], bytes] = _stored,
) -> AsyncIterator[bytes]:
    """The result lines of `types` (each as `shown` makes it), in create order, a page at a time."""
    store = services.of(request).store
    for result_type in types if len(types) == 1 else (None,):
        after: int | None = None
        more = True
        while more:
            page, more = await store.list_results(
                workspace, batch_id, after_index=after, limit=PAGE, result_type=result_type
            )
            lines = [shown(e) for e in page if e.line is not None and e.result_type in types]
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
    openai = models.is_openai_batch(batch_id)
    return await _stream(
        request, _retry_lines(request, workspace, batch_id, types, openai), f"{batch_id}_retry.jsonl"
    )


async def _retry_lines(
    request: Request, workspace: str, batch_id: str, types: tuple[models.ResultType, ...], openai: bool
) -> AsyncIterator[bytes]:
    """The requests of `types` as a requests file: an OpenAI batch's params are its input lines."""
    store = services.of(request).store
    after: int | None = None
    more = True
    while more:
        page, more = await store.list_params(
            workspace, batch_id, result_types=types, after_index=after, limit=PAGE
        )
        # The params as created may span lines (a pretty-printed body): made one line again.
        if openai:
            chunk = b"".join(_one_line(e.params) + b"\n" for e in page)
        else:
            chunk = b"".join(
                orjson.dumps({"custom_id": e.custom_id, "params": orjson.Fragment(_one_line(e.params))})
                + b"\n"
                for e in page
            )
        if chunk:
            yield chunk
        if page:
            after = page[-1].index


def _one_line(params: bytes) -> bytes:
    return params if b"\n" not in params and b"\r" not in params else orjson.dumps(orjson.loads(params))
