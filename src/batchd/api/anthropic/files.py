"""Handlers for /v1/files, in Anthropic's Files API shape: uploads for `container_upload` and the
files code execution wrote.

`POST /v1/files` (multipart, one `file` part: kept until deleted, not downloadable, as
Anthropic's), `GET /v1/files` (newest first; `limit`, and the cursors of both SDK generations:
`page` / `next_page`, and `after_id` / `before_id` with `first_id` / `last_id` / `has_more`),
`GET /v1/files/{file_id}` (metadata), `GET /v1/files/{file_id}/content` (the bytes of a program's
output) and `DELETE /v1/files/{file_id}`. A file is its workspace's alone: any other id is 404.
"""

from __future__ import annotations

import base64
import time
import urllib.parse
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import Response

from batchd import exceptions
from batchd.api import auth, bodies, responses, services
from batchd.api.anthropic import paging, version
from batchd.store.base import StoredFile
from batchd.tools.code_execution.containers import new_id

PAGE_PREFIX = "page_"
MULTIPART_OVERHEAD = 64 * 1024  # bytes of a multipart body besides the file: boundaries, headers
MAX_FILENAME = 255  # bytes of a file's name, UTF-8


async def _ctx(request: Request) -> tuple[services.Services, str]:
    found = services.of(request)
    workspace = await auth.workspace(request)
    version.check(request, found.settings)
    return found, workspace


def metadata(file: StoredFile) -> dict[str, Any]:
    return {
        "id": file.id,
        "type": "file",
        "filename": file.filename,
        "mime_type": file.mime_type,
        "size_bytes": file.size_bytes,
        "created_at": _stamp(file.created_at),
        "downloadable": file.downloadable,
    }


async def _find(request: Request) -> tuple[services.Services, str, StoredFile]:
    svc, workspace = await _ctx(request)
    file_id = request.path_params["file_id"]
    found = await svc.store.get_file(workspace, file_id, now=time.time())
    if found is None:
        raise exceptions.NotFound(f"file {file_id} not found")
    return svc, workspace, found


async def retrieve(request: Request) -> Response:
    _, _, found = await _find(request)
    return responses.json(metadata(found), request)


async def upload(request: Request) -> Response:
    svc, workspace = await _ctx(request)
    kind = request.headers.get("content-type", "")
    if kind.split(";", 1)[0].strip().lower() != "multipart/form-data" or "boundary=" not in kind:
        raise exceptions.UnsupportedMediaType("Content-Type must be multipart/form-data (with a boundary)")
    limit = svc.settings.max_file_bytes
    body = bytes(await bodies.read_body(request, limit + MULTIPART_OVERHEAD, "a file"))

    async def once() -> Any:
        yield body

    try:
        form = await MultiPartParser(request.headers, once(), max_files=1, max_fields=8).parse()
    except MultiPartException as exc:
        raise exceptions.InvalidRequest(f"The body is not a valid multipart form: {exc.message}") from None
    part = form.get("file")
    if not isinstance(part, UploadFile):
        raise exceptions.InvalidRequest("file: a file part named `file` is required")
    data = await part.read()
    if len(data) > limit:
        raise exceptions.RequestTooLarge(f"The file is larger than the limit of {limit} bytes")
    filename = _filename(part.filename)
    mime = (part.content_type or "").split(";", 1)[0].strip() or "application/octet-stream"
    now = time.time()
    row = StoredFile(new_id("file"), workspace, None, filename, mime, len(data), now, float("inf"), False)
    await svc.store.put_file(row, data)
    return responses.json(metadata(row), request)


async def content(request: Request) -> Response:
    svc, workspace, found = await _find(request)
    if not found.downloadable:
        raise exceptions.InvalidRequest(
            f"file {found.id} was uploaded: only files that code execution wrote can be downloaded"
        )
    data = await svc.store.file_content(workspace, found.id, now=time.time())
    if data is None:  # deleted or expired meanwhile
        raise exceptions.NotFound(f"file {found.id} not found")
    disposition = f"attachment; filename*=UTF-8''{_quoted(found.filename)}"
    return Response(data, media_type=found.mime_type, headers={"content-disposition": disposition})


async def delete(request: Request) -> Response:
    svc, workspace = await _ctx(request)
    file_id = request.path_params["file_id"]
    if not await svc.store.delete_file(workspace, file_id):
        raise exceptions.NotFound(f"file {file_id} not found")
    return responses.json({"id": file_id, "type": "file_deleted"}, request)


async def list_files(request: Request) -> Response:
    svc, workspace = await _ctx(request)
    query = request.query_params
    limit = paging.limit(query.get("limit"))
    page, after_id, before_id = query.get("page"), query.get("after_id"), query.get("before_id")
    if sum(1 for given in (page, after_id, before_id) if given) > 1:
        raise exceptions.InvalidRequest("Only one of page, after_id and before_id may be given")
    now = time.time()
    mark = None
    if page or after_id or before_id:
        file_id = _page_id(page) if page else (after_id or before_id or "")
        mark = await svc.store.get_file(workspace, file_id, now=now)
        if mark is None:
            raise exceptions.InvalidRequest(f"{'page' if page else 'after_id' if after_id else 'before_id'}: "
                                            "no such file in this workspace")  # fmt: skip
    if before_id:
        found = await svc.store.list_files(workspace, now=now, limit=limit + 1, after=mark, backwards=True)
        has_more = len(found) > limit
        files = list(reversed(found[:limit]))
    else:
        found = await svc.store.list_files(workspace, now=now, limit=limit + 1, after=mark)
        has_more = len(found) > limit
        files = found[:limit]
    # Older files follow the last one: when the page was cut, or always when it came before a file.
    older = bool(files) and (has_more or bool(before_id))
    return responses.json(
        {
            "data": [metadata(f) for f in files],
            "has_more": has_more,
            "first_id": files[0].id if files else None,
            "last_id": files[-1].id if files else None,
            "next_page": _page_token(files[-1].id) if older else None,
        },
        request,
    )


def _page_token(file_id: str) -> str:
    return PAGE_PREFIX + base64.urlsafe_b64encode(file_id.encode()).decode().rstrip("=")


def _page_id(token: str) -> str:
    if not token.startswith(PAGE_PREFIX):
        raise exceptions.InvalidRequest("page: not a page cursor of this server")
    raw = token[len(PAGE_PREFIX) :]
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise exceptions.InvalidRequest("page: not a page cursor of this server") from None


def _filename(raw: str | None) -> str:
    """An upload's name as a container shows it: the last path segment, no control characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or name in (".", "..") or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise exceptions.InvalidRequest("file: the part needs a filename (no control characters)")
    if len(name.encode()) > MAX_FILENAME:
        raise exceptions.InvalidRequest(f"file: the filename is longer than {MAX_FILENAME} bytes")
    return name


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")
