"""Dashboard views: each builds one context dict from Store calls, rendered as HTML or (`?format=json`) JSON.

Auth is the API's: with `api_keys` configured, the key is asked for once at /login and kept in an
HttpOnly, SameSite=Strict cookie; without keys (loopback only) every visitor shares the default
workspace and there is no prompt.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from batchd import exceptions, models
from batchd.api import auth, responses, services
from batchd.api.anthropic import schemas
from batchd.dashboard import render

COOKIE = "batchd_key"
BATCHES_PER_PAGE = 25
RESULTS_PER_PAGE = 50
SCAN_PAGES = 20  # list pages read at most to fill one filtered page
STATUSES = ("in_progress", "canceling", "ended")
RESULT_TYPES = tuple(t.value for t in models.ResultType)

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("batchd.dashboard", "templates"),
    autoescape=True,
)
_env.filters["when"] = render.when
_env.filters["pretty"] = render.pretty


def _key(request: Request) -> str | None:
    return auth.api_key(request) or request.cookies.get(COOKIE)


def _workspace(request: Request) -> str | None:
    """The visitor's workspace, or None when a key is needed and missing or wrong."""
    keys = services.of(request).settings.api_keys
    if not keys:
        return auth.DEFAULT_WORKSPACE
    key = _key(request)
    return keys.get(key) if key else None


def _wants_json(request: Request) -> bool:
    return request.query_params.get("format") == "json"


def _login_redirect(request: Request) -> Response:
    if _wants_json(request):
        raise exceptions.AuthenticationFailed("the dashboard needs an API key: log in at /login")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _page(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    if _wants_json(request):
        return responses.json(context, request, status)
    html = _env.get_template(template).render(
        **context, keys_required=bool(services.of(request).settings.api_keys)
    )
    return HTMLResponse(html, status_code=status)


def _html_errors(view: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """HTML pages show a failure as a page; the JSON twin keeps the API's error envelope."""

    @functools.wraps(view)
    async def wrapper(request: Request) -> Response:
        try:
            return await view(request)
        except exceptions.BatchdError as exc:
            if _wants_json(request):
                raise
            context = {"status": exc.status, "error_type": exc.error_type, "message": exc.message}
            return _page(request, "error.html", context, exc.status)

    return wrapper


def _same_origin(request: Request) -> None:
    """Refuse cross-site form posts (the cookie is SameSite=Strict; loopback mode has none)."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise exceptions.PermissionDenied("cross-origin dashboard actions are not allowed")


@_html_errors
async def index(request: Request) -> Response:
    workspace = _workspace(request)
    if workspace is None:
        return _login_redirect(request)
    svc = services.of(request)
    status = request.query_params.get("status") or None
    if status not in (None, *STATUSES):
        raise exceptions.InvalidRequest(f"status: must be one of {', '.join(STATUSES)}")
    after_id = request.query_params.get("after_id") or None
    found: list[models.Batch] = []
    has_more = False
    for _ in range(SCAN_PAGES):
        page, has_more = await svc.store.list_batches(workspace, after_id=after_id, limit=100)
        for b in page:
            if status is None or b.processing_status == status:
                found.append(b)
        if page:
            after_id = page[-1].id
        if len(found) > BATCHES_PER_PAGE or not has_more:
            break
    more = len(found) > BATCHES_PER_PAGE or has_more
    shown = found[:BATCHES_PER_PAGE]
    context = {
        "batches": [schemas.batch(b, svc.settings.public_url) for b in shown],
        "status": status,
        "statuses": STATUSES,
        "next_after_id": shown[-1].id if shown and more else None,
        "now": time.time(),
    }
    return _page(request, "index.html", context)


@_html_errors
async def batch_page(request: Request) -> Response:
    workspace = _workspace(request)
    if workspace is None:
        return _login_redirect(request)
    svc = services.of(request)
    batch_id = request.path_params["batch_id"]
    query = request.query_params
    custom_id = (query.get("custom_id") or "").strip() or None
    result_type = query.get("type") or None
    if result_type not in (None, *RESULT_TYPES):
        raise exceptions.InvalidRequest(f"type: must be one of {', '.join(RESULT_TYPES)}")
    after = query.get("after")
    if after is not None and not after.isdigit():
        raise exceptions.InvalidRequest("after: must be a request index")
    batch = await svc.store.get_batch(workspace, batch_id)
    entries, has_more = await svc.store.list_results(
        workspace,
        batch_id,
        after_index=None if after is None else int(after),
        limit=RESULTS_PER_PAGE,
        custom_id=custom_id,
        result_type=None if result_type is None else models.ResultType(result_type),
    )
    context = {
        "batch": schemas.batch(batch, svc.settings.public_url),
        "results": [render.entry(e) for e in entries],
        "custom_id": custom_id,
        "type": result_type,
        "types": RESULT_TYPES,
        "after": None if after is None else int(after),
        "filter_qs": urlencode({k: v for k, v in (("custom_id", custom_id), ("type", result_type)) if v}),
        "next_after": entries[-1].index if entries and has_more else None,
        "now": time.time(),
    }
    return _page(request, "batch.html", context)


@_html_errors
async def cancel(request: Request) -> Response:
    return await _action(request, "cancel")


@_html_errors
async def delete(request: Request) -> Response:
    return await _action(request, "delete")


async def _action(request: Request, action: str) -> Response:
    _same_origin(request)
    workspace = _workspace(request)
    if workspace is None:
        raise exceptions.AuthenticationFailed("the dashboard needs an API key: log in at /login")
    store = services.of(request).store
    batch_id = request.path_params["batch_id"]
    if action == "cancel":
        await store.cancel_batch(workspace, batch_id, time.time())
        return RedirectResponse(f"/batches/{batch_id}", status_code=303)
    await store.delete_batch(workspace, batch_id)
    return RedirectResponse("/", status_code=303)


def _safe_next(target: str | None) -> str:
    # Only paths on this site: never redirect a visitor elsewhere after login.
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


async def login(request: Request) -> Response:
    keys = services.of(request).settings.api_keys
    target = _safe_next(request.query_params.get("next"))
    if request.method == "GET":
        return _page(request, "login.html", {"next": target, "error": None})
    _same_origin(request)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("key") or [""])[0].strip()
    target = _safe_next((form.get("next") or [target])[0])
    if keys and key not in keys:
        return _page(request, "login.html", {"next": target, "error": "That key is not valid."}, 401)
    response = RedirectResponse(target, status_code=303)
    if keys:
        response.set_cookie(COOKIE, key, httponly=True, samesite="strict", max_age=30 * 86400)
    return response


async def logout(request: Request) -> Response:
    _same_origin(request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response
