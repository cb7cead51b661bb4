"""One upstream HTTP endpoint: a shared aiohttp.ClientSession and the mapping of its failures.

aiohttp rather than httpx: against a trivial loopback server its client costs ~0.08 s of CPU per
1,000 calls here, httpx's ~1.3 s (and httpx over a hand-written HTTP/1.1 transport, which batchd
had, ~0.2 s); next to a small engine on the same host, that CPU is taken from the engine.

    TimeoutError (connect or total)        -> exceptions.BackendTimeout        (retryable)
    aiohttp.ClientError (connect, reset…)  -> exceptions.BackendError 502      (retryable)
    HTTP 408/409/429/5xx/529               -> exceptions.BackendError          (retryable, retry-after kept)
    other HTTP 4xx                         -> exceptions.BackendError          (final)
    a 2xx body that is not JSON            -> exceptions.BackendError 502      (retryable)

The upstream's own error type is kept when it is one of Anthropic's; otherwise it is derived
from the status. An `x-should-retry` header, as Anthropic sends, overrides the status.
"""

from __future__ import annotations

import email.utils
import ssl
import time
import urllib.request
from collections.abc import Mapping
from typing import Any

import aiohttp
import certifi
import orjson

from batchd import exceptions
from batchd.config.routes import AuthMode

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


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait as the upstream asked: `retry-after-ms`, then `retry-after` (seconds or date).

    headers: a case-insensitive mapping (aiohttp's response headers) or one with lower-case names.
    """
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


def error_from_response(
    upstream: str, status: int, headers: Mapping[str, str], content: bytes, reason: str = ""
) -> exceptions.BackendError:
    """An HTTP error answer -> BackendError with the upstream's type and message."""
    error_type = error_type_for(status)
    message = ""
    try:
        body = orjson.loads(content)
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
        message = content.decode("utf-8", "replace").strip()[:500] or reason
    retryable = status in RETRYABLE_STATUS or status >= 500
    should = headers.get("x-should-retry")
    if should in ("true", "false"):
        retryable = should == "true"
    return exceptions.UpstreamStatus(
        f"{upstream} returned HTTP {status}: {message}",
        status=status,
        error_type=error_type,
        retryable=retryable,
        retry_after=parse_retry_after(headers),
        body=body,
    )


def proxy_in_env() -> bool:
    """Whether the environment names any HTTP proxy (HTTP_PROXY, HTTPS_PROXY…; NO_PROXY alone is none)."""
    return any(scheme != "no" for scheme in urllib.request.getproxies())


def ssl_context() -> ssl.SSLContext:
    """The system's CAs (and SSL_CERT_FILE/SSL_CERT_DIR) plus certifi's bundle, which httpx used alone."""
    context = ssl.create_default_context()
    context.load_verify_locations(certifi.where())
    return context


def auth_header(api_key: str | None, auth: AuthMode) -> dict[str, str]:
    """The upstream's credential header."""
    if not api_key:
        return {}
    if auth is AuthMode.BEARER:
        return {"authorization": f"Bearer {api_key}"}
    return {"x-api-key": api_key}


class Upstream:
    """One base URL with its own session; at most `concurrency` connections, as the route's limit.

    The session is opened on the first call (aiohttp binds it to the running event loop).
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        concurrency: int,
        timeout: float,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.concurrency = concurrency
        self.headers = {"content-type": "application/json", **(headers or {})}
        # aiohttp's trust_env looks the proxy up (and ~/.netrc) in a worker thread on every call,
        # which costs more than the rest of the call: only when a proxy is configured at all.
        self.trust_env = proxy_in_env()
        self._ssl = ssl_context() if self.base_url.startswith("https:") else None
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(CONNECT_TIMEOUT, timeout))
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.concurrency, limit_per_host=self.concurrency, ssl=self._ssl or True
        )
        self._session = aiohttp.ClientSession(
            connector=connector, headers=self.headers, timeout=self._timeout, trust_env=self.trust_env
        )
        return self._session

    def session(self) -> aiohttp.ClientSession:
        """The shared session, opened on first use (backends/sse.py streams through it)."""
        return self._session or self._open()

    async def post_json(
        self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[dict[str, Any], Mapping[str, str]]:
        """POST a JSON body; the decoded JSON object answered, or a BackendError."""
        return await self._send("POST", path, orjson.dumps(body), headers)

    async def get_json(self, path: str) -> tuple[dict[str, Any], Mapping[str, str]]:
        """GET `path`; the decoded JSON object answered, or a BackendError."""
        return await self._send("GET", path, None, None)

    async def _send(
        self, method: str, path: str, data: bytes | None, headers: dict[str, str] | None
    ) -> tuple[dict[str, Any], Mapping[str, str]]:
        where = f"{self.name} ({self.base_url}{path})"
        session = self._session or self._open()
        url = self.base_url + path
        for last in (False, True):
            try:
                async with session.request(method, url, data=data, headers=headers) as response:
                    content = await response.read()
                    break
            except TimeoutError as exc:  # aiohttp's ServerTimeoutError is one too
                raise exceptions.BackendTimeout(
                    f"{where} did not answer within {self.timeout:g}s ({type(exc).__name__})"
                ) from exc
            except aiohttp.ClientConnectorError as exc:
                raise _unreachable(where, exc) from exc
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # The connection dropped before an answer: most often a kept-alive one the server
                # had just closed. Sent once more at once, as aiohttp itself does for GET.
                if last:
                    raise _unreachable(where, exc) from exc
            except aiohttp.ClientError as exc:
                raise _unreachable(where, exc) from exc
        status = response.status
        if status >= 400:
            raise error_from_response(where, status, response.headers, content, response.reason or "")
        try:
            answer = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise exceptions.BackendError(
                f"{where} answered HTTP {status} with a body that is not JSON",
                status=502,
                error_type="api_error",
                retryable=True,
            ) from exc
        if not isinstance(answer, dict):
            raise exceptions.BackendError(
                f"{where} answered with JSON that is not an object", status=502, retryable=True
            )
        return answer, response.headers

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _unreachable(where: str, exc: Exception) -> exceptions.BackendError:
    return exceptions.BackendError(
        f"{where} could not be reached: {type(exc).__name__}: {exc}",
        status=502,
        error_type="api_error",
        retryable=True,
    )
