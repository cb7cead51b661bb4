"""One upstream HTTP endpoint: a shared httpx.AsyncClient and the mapping of its failures.

    httpx.TimeoutException            -> exceptions.BackendTimeout        (retryable)
    httpx.TransportError (connect...) -> exceptions.BackendError 502      (retryable)
    HTTP 408/409/429/5xx/529          -> exceptions.BackendError          (retryable, retry-after kept)
    other HTTP 4xx                    -> exceptions.BackendError          (final)
    a 2xx body that is not JSON       -> exceptions.BackendError 502      (retryable)

The upstream's own error type is kept when it is one of Anthropic's; otherwise it is derived
from the status. An `x-should-retry` header, as Anthropic sends, overrides the status.
"""

from __future__ import annotations

import email.utils
import os
import time
from typing import Any

import httpx
import orjson

from batchd import exceptions

try:
    from batchd.backends.http_pool import lean_mounts
except ImportError:  # no httptools (uvicorn without [standard]): httpx's own transport
    lean_mounts = None  # type: ignore[assignment]

CONNECT_TIMEOUT = 10.0  # seconds, capped by the route's timeout
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
ANTHROPIC_ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "timeout_error",
        "overloaded_error",
    }
)
_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for(status: int) -> str:
    if status in _STATUS_TYPES:
        return _STATUS_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def parse_retry_after(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds to wait as the upstream asked: `retry-after-ms`, then `retry-after` (seconds or date)."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_from_response(upstream: str, response: httpx.Response) -> exceptions.BackendError:
    """An HTTP error answer -> BackendError with the upstream's type and message."""
    status = response.status_code
    error_type = error_type_for(status)
    message = ""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("detail") or "")
            upstream_type = err.get("type")
            if upstream_type in ANTHROPIC_ERROR_TYPES:
                error_type = upstream_type
        elif isinstance(err, str):
            message = err
        if not message and isinstance(body.get("detail"), str):
            message = body["detail"]
    if not message:
        message = response.text.strip()[:500] or response.reason_phrase
    retryable = status in RETRYABLE_STATUS or status >= 500
    should = response.headers.get("x-should-retry")
    if should in ("true", "false"):
        retryable = should == "true"
    return exceptions.BackendError(
        f"{upstream} returned HTTP {status}: {message}",
        status=status,
        error_type=error_type,
        retryable=retryable,
        retry_after=parse_retry_after(response.headers),
    )


class Upstream:
    """One base URL with its own client; connection limits match the route's concurrency."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        concurrency: int,
        timeout: float,
        headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # Plain-http upstreams (engines on this host or LAN) go through the lean transport: httpx's
        # own costs more CPU per call than a small engine's answer (see http_pool).
        # (Not when an HTTP proxy is configured in the environment: httpx's transport honours it.)
        proxied = any(os.environ.get(v) for v in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"))
        lean = transport is None and lean_mounts is not None and not proxied
        mounts = lean_mounts(concurrency) if lean else None
        self.client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout)),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            transport=transport,
            mounts=mounts,
            follow_redirects=False,
        )

    async def post_json(
        self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[dict[str, Any], httpx.Headers]:
        """POST a JSON body; the decoded JSON object answered, or a BackendError."""
        where = f"{self.name} ({self.base_url}{path})"
        try:
            response = await self.client.post(
                path,
                content=orjson.dumps(body),
                headers={"content-type": "application/json", **(headers or {})},
            )
        except httpx.TimeoutException as exc:
            raise exceptions.BackendTimeout(
                f"{where} did not answer within {self.timeout:g}s ({type(exc).__name__})"
            ) from exc
        except httpx.TransportError as exc:
            raise exceptions.BackendError(
                f"{where} could not be reached: {type(exc).__name__}: {exc}",
                status=502,
                error_type="api_error",
                retryable=True,
            ) from exc
        if response.status_code >= 400:
            raise error_from_response(where, response)
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise exceptions.BackendError(
                f"{where} answered HTTP {response.status_code} with a body that is not JSON",
                status=502,
                error_type="api_error",
                retryable=True,
            ) from exc
        if not isinstance(data, dict):
            raise exceptions.BackendError(
                f"{where} answered with JSON that is not an object", status=502, retryable=True
            )
        return data, response.headers

    async def aclose(self) -> None:
        await self.client.aclose()
