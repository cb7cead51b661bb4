"""Handlers for /v1/files: the files code execution wrote, in Anthropic's Files API shape.

`GET /v1/files` (newest first; `limit`, and the cursors of both SDK generations: `page` /
`next_page`, and `after_id` / `before_id` with `first_id` / `last_id` / `has_more`),
`GET /v1/files/{file_id}` (metadata), `GET /v1/files/{file_id}/content` (the bytes) and
`DELETE /v1/files/{file_id}`. A file is its workspace's alone: any other id is 404.
"""

from __future__ import annotations

import base64
import time
import urllib.parse
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from batchd import exceptions
from batchd.api import auth, responses, services
from batchd.api.anthropic import paging
from batchd.store.base import StoredFile

PAGE_PREFIX = "page_"


def _ctx(request: Request) -> tuple[services.Services, str]:
    found = services.of(request)
    return found, auth.workspace(request, found.settings.api_keys)


def metadata(file: StoredFile) -> dict[str, Any]:
    return {
        "id": file.id,
        "type": "file",
        "filename": file.filename,
        "mime_type": file.mime_type,
        "size_bytes": file.size_bytes,
        "created_at": _stamp(file.created_at),
        "downloadable": True,
    }


async def _find(request: Request) -> tuple[services.Services, str, StoredFile]:
    svc, workspace = _ctx(request)
    file_id = request.path_params["file_id"]
    found = await svc.store.get_file(workspace, file_id, now=time.time())
    if found is None:
        raise exceptions.NotFound(f"file {file_id} not found")
    return svc, workspace, found


async def retrieve(request: Request) -> Response:
    _, _, found = await _find(request)
    return responses.json(metadata(found), request)


async def content(request: Request) -> Response:
    svc, workspace, found = await _find(request)
    data = await svc.store.file_content(workspace, found.id, now=time.time())
    if data is None:  # deleted or expired meanwhile
        raise exceptions.NotFound(f"file {found.id} not found")
    disposition = f"attachment; filename*=UTF-8''{_quoted(found.filename)}"
    return Response(data, media_type=found.mime_type, headers={"content-disposition": disposition})


async def delete(request: Request) -> Response:
    svc, workspace = _ctx(request)
    file_id = request.path_params["file_id"]
    if not await svc.store.delete_file(workspace, file_id):
        raise exceptions.NotFound(f"file {file_id} not found")
    return responses.json({"id": file_id, "type": "file_deleted"}, request)


async def list_files(request: Request) -> Response:
    svc, workspace = _ctx(request)
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


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")
