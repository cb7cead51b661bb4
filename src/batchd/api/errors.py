"""The single place that renders errors: every failure leaves as Anthropic's error envelope, or, on
the OpenAI wire (api/wires.py), as OpenAI's: `{"error": {message, type, param, code}}`, all four keys
always there, with `x-request-id` (which the openai SDK reads) beside `request-id`."""

from __future__ import annotations

import logging

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from batchd import exceptions, models
from batchd.api import wires

logger = logging.getLogger("batchd.api")

_HTTP_STATUS = {
    400: exceptions.InvalidRequest,
    401: exceptions.AuthenticationFailed,
    403: exceptions.PermissionDenied,
    404: exceptions.RouteNotFound,
    405: exceptions.MethodNotAllowed,
    413: exceptions.RequestTooLarge,
}
CLIENT_CLOSED = 499  # nginx's "client closed request": the client left before its request was read
# The order methods are listed in, in an Allow header; others follow in alphabetical order.
_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def request_id(request: Request) -> str:
    rid: str | None = request.scope.get("batchd.request_id")
    if rid is None:
        rid = request.scope["batchd.request_id"] = models.new_request_id()
    return rid


def envelope(error_type: str, message: str, rid: str | None) -> bytes:
    return orjson.dumps(
        {"type": "error", "error": {"type": error_type, "message": message}, "request_id": rid}
    )


# The OpenAI envelope's `code` where the error names none, by status.
_OPENAI_CODES = {
    401: "invalid_api_key",
    404: "not_found",
    405: "method_not_allowed",
    429: "rate_limit_exceeded",
}


def openai_envelope(exc: exceptions.BatchdError) -> bytes:
    """OpenAI's error envelope for `exc`: type invalid_request_error for a client's error (4xx),
    server_error else; param and code null unless known."""
    param = getattr(exc, "param", None)
    code = getattr(exc, "code", None) or _OPENAI_CODES.get(exc.status)
    error_type = "invalid_request_error" if exc.status < 500 else "server_error"
    if exc.status == 429:
        error_type = "rate_limit_error"
    return orjson.dumps({"error": {"message": exc.message, "type": error_type, "param": param, "code": code}})


def render(
    exc: exceptions.BatchdError, rid: str, headers: dict[str, str] | None = None, *, openai: bool = False
) -> Response:
    headers = {"request-id": rid, **(headers or {})}
    if exc.status >= 500:
        headers.setdefault("x-should-retry", "true")
    if openai:
        headers["x-request-id"] = rid
        if isinstance(exc, exceptions.Conflict):  # deterministic: the SDK would retry a 409 twice
            headers["x-should-retry"] = "false"
    return Response(
        openai_envelope(exc) if openai else envelope(exc.error_type, exc.message, rid),
        status_code=exc.status,
        media_type="application/json",
        headers=headers,
    )


async def handle_batchd_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, exceptions.BatchdError)
    if exc.status >= 500:
        logger.error("request %s failed: %s", request_id(request), exc.message)
    headers = None
    if isinstance(exc, exceptions.QuotaExceeded):
        headers = {"retry-after": str(exc.retry_after)}
    return render(exc, request_id(request), headers, openai=wires.is_openai(request))


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    cls = _HTTP_STATUS.get(exc.status_code, exceptions.BatchdError)
    message = None
    if exc.status_code == 404:
        message = f"Not found: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}"
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and "Allow" in headers:
        headers["Allow"] = allowed_methods(request)
    return render(cls(message), request_id(request), headers, openai=wires.is_openai(request))


def allowed_methods(request: Request) -> str:
    """Every method the request's path serves, as an Allow header (OPTIONS included).

    Starlette's 405 names the methods of one route only, and each method of a path is a route of
    its own here: the rest of them are found by matching the path against every route.
    """
    methods = {"OPTIONS"}
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    rank = {method: i for i, method in enumerate(_METHOD_ORDER)}
    return ", ".join(sorted(methods, key=lambda m: (rank.get(m, len(rank)), m)))


async def handle_client_disconnect(request: Request, exc: Exception) -> Response:
    """The client left while its request was being read: nothing was done, and nothing failed
    here. The answer cannot reach anyone; its status marks the access log line (one line, no
    traceback) and the metrics, as no server error."""
    return Response(status_code=CLIENT_CLOSED, headers={"request-id": request_id(request)})


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("request %s failed", request_id(request))
    return render(exceptions.BatchdError(), request_id(request), openai=wires.is_openai(request))
