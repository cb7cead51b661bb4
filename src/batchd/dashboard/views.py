"""Dashboard views: each builds one context dict from Store calls, rendered as HTML or (`?format=json`) JSON.

Auth is the API's keys (api/auth.py, api/keyring.py): with `api_keys` or `managed_keys`, a key is
asked for once at /login and a server-side session is kept (sessions.py: the cookie holds a random
id, never the key); an `x-api-key` header works too. Without keys (loopback only) every visitor
shares the default workspace and there is no prompt.
Every form carries a CSRF token (sessions.py), checked by the view that takes it; the Origin of every
state-changing request has been checked before (api/guard.py).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec
from urllib.parse import parse_qs, quote, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from batchd import exceptions, models
from batchd.api import auth, bodies, responses, services
from batchd.api.anthropic import schemas
from batchd.dashboard import kinds, ratelimit, render, sessions, speed, upstreams, usage
from batchd.store.base import DeliveryState

FORM_LIMIT = 64 * 1024  # bytes: the dashboard's forms hold a key, a path and a token
BATCHES_PER_PAGE = 25
RESULTS_PER_PAGE = 50
SCAN_PAGES = 20  # list pages read at most to fill one filtered page
WEBHOOK_ROWS = 100  # deliveries the webhooks page shows, newest event first
LIST_USAGE_BLOCKS = 40  # blocks of results (usage.PAGE each) the list page sums per request
LIST_USAGE_SECONDS = 0.03  # and no block started after this (one at least): ~5-10 ms a block
STATUSES = ("in_progress", "canceling", "ended")
RESULT_TYPES = tuple(t.value for t in models.ResultType)
SECTIONS = {
    "index.html": "batches",
    "batch.html": "batches",
    "new.html": "new",
    "upstreams.html": "upstreams",
    "webhooks.html": "webhooks",
}
P = ParamSpec("P")

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("batchd.dashboard", "templates"),
    autoescape=True,
)
_env.filters["when"] = render.when
_env.filters["pretty"] = render.pretty
_env.filters["number"] = render.number
_env.filters["when_epoch"] = render.when_epoch
_env.filters["duration"] = render.duration


async def workspace_of(request: Request) -> str | None:
    """The visitor's workspace, or None when a key is needed and missing, wrong or its session ended."""
    svc = services.of(request)
    if not svc.settings.keys_required:
        return auth.DEFAULT_WORKSPACE
    key = auth.api_key(request)
    if key is not None:
        found = await svc.keyring.caller(key)
        return None if found is None else found.workspace
    session_id = sessions.cookie_id(request)
    return None if session_id is None else await sessions.workspace_of(svc, session_id, time.time())


def _wants_json(request: Request) -> bool:
    return request.query_params.get("format") == "json"


def _login_redirect(request: Request) -> Response:
    if _wants_json(request):
        raise exceptions.AuthenticationFailed("the dashboard needs an API key: log in at /login")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _page(
    request: Request,
    template: str,
    context: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    if _wants_json(request):
        return responses.json(context, request, status)
    # The forms' CSRF token derives from the cookie's id: a visitor without one gets one now.
    session_id = sessions.cookie_id(request)
    anchor = session_id or sessions.new_id()
    html = _env.get_template(template).render(
        **context,
        keys_required=services.of(request).settings.keys_required,
        section=SECTIONS.get(template),
        csrf_field=sessions.CSRF_FIELD,
        csrf_token=sessions.csrf_token(anchor),
    )
    response = HTMLResponse(html, status_code=status, headers=headers)
    if session_id is None:
        sessions.set_cookie(response, request, anchor, max_age=None)
    if sessions.LEGACY_COOKIE in request.cookies:
        response.delete_cookie(sessions.LEGACY_COOKIE)  # it held a raw API key
    return response


def html_errors(
    view: Callable[Concatenate[Request, P], Awaitable[Response]],
) -> Callable[Concatenate[Request, P], Awaitable[Response]]:
    """HTML pages show a failure as a page; the JSON twin keeps the API's error envelope."""

    @functools.wraps(view)
    async def wrapper(request: Request, /, *args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await view(request, *args, **kwargs)
        except exceptions.BatchdError as exc:
            if _wants_json(request):
                raise
            context = {"status": exc.status, "error_type": exc.error_type, "message": exc.message}
            return _page(request, "error.html", context, exc.status)

    return wrapper


async def _form(request: Request) -> dict[str, str]:
    """The posted form's fields (the first value of each), refused (403) without this browser's
    CSRF token. The Origin was checked before the view (api/guard.py); this is the second line."""
    body = await bodies.read_body(request, FORM_LIMIT)
    fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    if not sessions.csrf_ok(sessions.cookie_id(request), fields.get(sessions.CSRF_FIELD, "")):
        raise exceptions.PermissionDenied(
            "this form was not sent by this dashboard, or it is out of date: reload the page and try again"
        )
    return fields


@html_errors
async def index(request: Request, *, sums: usage.UsageCache, rates: speed.Speed) -> Response:
    workspace = await workspace_of(request)
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
        page, has_more = await svc.store.list_batches(
            workspace, after_id=after_id, limit=100, every_wire=True
        )
        for b in page:
            if status is None or b.processing_status == status:
                found.append(b)
        if page:
            after_id = page[-1].id
        if len(found) > BATCHES_PER_PAGE or not has_more:
            break
    more = len(found) > BATCHES_PER_PAGE or has_more
    shown = found[:BATCHES_PER_PAGE]
    total = usage.Usage()
    budget = usage.Budget(LIST_USAGE_BLOCKS, deadline=time.monotonic() + LIST_USAGE_SECONDS)
    for b in shown:
        total = total.merged(await sums.usage(svc.store, workspace, b, budget))
        rates.observe(b)
    kind_of = await kinds.kinds(svc, workspace, shown)
    context = {
        "batches": [{**schemas.batch(b, svc.settings.public_url), "kind": kind_of[b.id]} for b in shown],
        "usage": total.as_dict(),
        "status": status,
        "statuses": STATUSES,
        "next_after_id": shown[-1].id if shown and more else None,
        "now": time.time(),
    }
    return _page(request, "index.html", context)


@html_errors
async def batch_page(request: Request, *, sums: usage.UsageCache, rates: speed.Speed) -> Response:
    workspace = await workspace_of(request)
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
    row = await kinds.openai_row(svc, workspace, batch_id) if models.is_openai_batch(batch_id) else None
    wire = None if row is None or row.engine_seq is None else render.OpenAIWire(batch_id, row.engine_seq)
    entries, has_more = await svc.store.list_results(
        workspace,
        batch_id,
        after_index=None if after is None else int(after),
        limit=RESULTS_PER_PAGE,
        custom_id=custom_id,
        result_type=None if result_type is None else models.ResultType(result_type),
    )
    used = await sums.usage(svc.store, workspace, batch)
    context = {
        "batch": schemas.batch(batch, svc.settings.public_url),
        "kind": kinds.kind(row),
        "usage": used.as_dict(),
        "speed": rates.figures(batch),
        "results": [render.entry(e, wire) for e in entries],
        "custom_id": custom_id,
        "type": result_type,
        "types": RESULT_TYPES,
        "after": None if after is None else int(after),
        "filter_qs": urlencode({k: v for k, v in (("custom_id", custom_id), ("type", result_type)) if v}),
        "next_after": entries[-1].index if entries and has_more else None,
        "now": time.time(),
    }
    return _page(request, "batch.html", context)


@html_errors
async def new_batch(request: Request) -> Response:
    workspace = await workspace_of(request)
    if workspace is None:
        return _login_redirect(request)
    settings = services.of(request).settings
    limits = {"max_requests": settings.max_requests, "max_batch_bytes": settings.max_batch_bytes}
    return _page(request, "new.html", {"limits": limits})


@html_errors
async def upstreams_page(request: Request, *, seen: upstreams.Upstreams) -> Response:
    workspace = await workspace_of(request)
    if workspace is None:
        return _login_redirect(request)
    svc = services.of(request)
    context = await seen.figures(svc.router, svc.metrics, time.time())
    context["now"] = time.time()
    return _page(request, "upstreams.html", context)


@html_errors
async def webhooks_page(request: Request) -> Response:
    """The workspace's webhook endpoints and its deliveries, newest event first; `?state=dead`
    shows the dead letters, each with a redeliver button."""
    workspace = await workspace_of(request)
    if workspace is None:
        return _login_redirect(request)
    store = services.of(request).store
    raw_state = request.query_params.get("state") or None
    try:
        state = None if raw_state is None else DeliveryState(raw_state)
    except ValueError:
        raise exceptions.InvalidRequest(
            f"state: one of {', '.join(s.value for s in DeliveryState)}, not {raw_state!r}"
        ) from None
    endpoints = await store.list_webhook_endpoints(workspace)
    found = await store.list_webhook_deliveries(workspace, state=state, limit=WEBHOOK_ROWS)
    context = {
        "state": raw_state,
        "states": [s.value for s in DeliveryState],
        "endpoints": [{"id": e.id, "url": e.url, "created_at": e.created_at} for e in endpoints],
        "deliveries": [d._asdict() for d in found],
    }
    return _page(request, "webhooks.html", context)


@html_errors
async def redeliver(request: Request) -> Response:
    await _form(request)
    workspace = await workspace_of(request)
    if workspace is None:
        raise exceptions.AuthenticationFailed("the dashboard needs an API key: log in at /login")
    event_id = request.path_params["event_id"]
    await services.of(request).store.redeliver_webhook_event(workspace, event_id, now=time.time())
    return RedirectResponse(f"/webhooks?state={DeliveryState.PENDING.value}", status_code=303)


@html_errors
async def cancel(request: Request) -> Response:
    return await _action(request, "cancel")


@html_errors
async def delete(request: Request) -> Response:
    return await _action(request, "delete")


async def _action(request: Request, action: str) -> Response:
    await _form(request)
    workspace = await workspace_of(request)
    if workspace is None:
        raise exceptions.AuthenticationFailed("the dashboard needs an API key: log in at /login")
    store = services.of(request).store
    batch_id = request.path_params["batch_id"]
    if action == "cancel":
        await store.cancel_batch(workspace, batch_id, time.time())
        return RedirectResponse(f"/batches/{batch_id}", status_code=303)
    if models.is_openai_batch(batch_id):
        # OpenAI's API deletes no batch; its output and error files go through DELETE /v1/files/{id}.
        raise exceptions.InvalidRequest("an OpenAI batch cannot be deleted: delete its files through the API")
    await store.delete_batch(workspace, batch_id)
    return RedirectResponse("/", status_code=303)


def _safe_next(target: str | None) -> str:
    # Only paths on this site: never redirect a visitor elsewhere after login.
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@html_errors
async def login(request: Request, *, attempts: ratelimit.Limiter) -> Response:
    svc = services.of(request)
    target = _safe_next(request.query_params.get("next"))
    if request.method == "GET":
        return _page(request, "login.html", {"next": target, "error": None})
    # Every attempt counts, before anything is checked: guessing is slow whatever is guessed.
    client = ratelimit.client_key(request.client.host if request.client else None)
    wait = attempts.take(client, rate=svc.settings.login_attempts, now=time.monotonic())
    if wait:
        seconds = ratelimit.retry_after(wait)
        error = f"Too many login attempts from this address: try again in {seconds} s."
        return _page(request, "login.html", {"next": target, "error": error}, 429, {"retry-after": seconds})
    form = await _form(request)
    key = form.get("key", "").strip()
    target = _safe_next(form.get("next", target))
    if not svc.settings.keys_required:
        return RedirectResponse(target, status_code=303)
    caller = await svc.keyring.caller(key) if key else None
    if caller is None:
        return _page(request, "login.html", {"next": target, "error": "That key is not valid."}, 401)
    now = time.time()
    previous = sessions.cookie_id(request)
    if previous is not None:
        await sessions.end(svc, previous, now)  # a session replaced by a new login ends
    response = RedirectResponse(target, status_code=303)
    session_id = await sessions.start(svc, sessions.proof_source(key, caller), caller.workspace, now)
    sessions.set_cookie(response, request, session_id, max_age=svc.settings.session_lifetime)
    return response


@html_errors
async def logout(request: Request) -> Response:
    await _form(request)
    session_id = sessions.cookie_id(request)
    if session_id is not None:
        await sessions.end(services.of(request), session_id, time.time())
    response = RedirectResponse("/login", status_code=303)
    sessions.clear_cookie(response, request)
    return response
