"""Request guards, run before any view: the Host a request names, the Origin of a state-changing
request, and JSON bodies on the API.

A web page can make its visitor's browser send requests to batchd without any CORS permission
(forms, `fetch(url, {mode: "no-cors"})`): it cannot read the answers, but a POST still acts. And a
page on a name whose DNS later answers 127.0.0.1 (DNS rebinding) is, to the browser, the same
origin as the batchd behind that address, so it can read the answers too. Three checks close those
doors, each answering in Anthropic's error envelope:

- **Host** (403): on a loopback bind without API keys (`api_keys` or `managed_keys`), where being
  on this machine is the only credential, only loopback names (`localhost`, 127.0.0.0/8, `[::1]`,
  any port), the `allowed_hosts` and `public_url`'s host are served. With keys, a rebinding page has no key to
  send, and the check is on only when `allowed_hosts` is set. 403 rather than 421 (Misdirected
  Request): a 421 asks the client to retry on another connection, which browsers do; a 403 is
  final and is Anthropic's `permission_error`.
- **Origin** (403): a state-changing request (any method but GET, HEAD and OPTIONS) that a browser
  sent from another origin, or from an opaque one (`Origin: null`: a sandboxed frame, a `data:`
  page), is refused. This server's origins are the one the request names (scheme and `Host`) and
  `public_url`'s. Clients that are not browsers send no Origin.
- **JSON bodies** (415): a POST, PUT or PATCH to the API (`/v1/`) with a body must say
  `Content-Type: application/json` (parameters such as charset allowed). The types a page may send
  without asking (text/plain, forms) are then never read as JSON, whatever the body holds.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from batchd import exceptions
from batchd.api import errors, wires
from batchd.config import Settings, values

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
API_PREFIX = "/v1/"
JSON = "application/json"
UPLOAD = ("/v1/files", "multipart/form-data")  # the one API body that is not JSON
DEFAULT_PORTS = {"http": 80, "https": 443}
CROSS_SITE = frozenset({"cross-site", "same-site"})  # Sec-Fetch-Site values of another origin

Origin = tuple[str, str, int]  # scheme, host name, port


def origin_of(scheme: str, authority: str) -> Origin | None:
    """(scheme, host, port) of `scheme://authority`, the port made explicit; None if malformed."""
    name = values.host_name(authority)
    if name is None or scheme not in DEFAULT_PORTS:
        return None
    try:
        port = urlsplit(f"{scheme}://{authority}").port
    except ValueError:
        return None
    return scheme, name, port or DEFAULT_PORTS[scheme]


def url_origin(url: str) -> Origin | None:
    """The origin of an absolute http(s) URL, such as an `Origin` header or `public_url`."""
    parts = urlsplit(url.strip().lower())
    return origin_of(parts.scheme, parts.netloc) if parts.netloc else None


class Guard:
    """ASGI middleware refusing, before any view runs, what the module docstring lists."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.public_origin = url_origin(settings.public_url) if settings.public_url else None
        self.allowed = set(settings.allowed_hosts)
        if self.public_origin is not None:
            self.allowed.add(self.public_origin[1])
        self.check_host = bool(settings.allowed_hosts) or (
            not settings.keys_required and values.is_loopback(settings.host)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self.refusal(scope)
        if refused is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        response = errors.render(refused, errors.request_id(request), openai=wires.is_openai(request))
        await response(scope, receive, send)

    def refusal(self, scope: Scope) -> exceptions.ApiError | None:
        """Why the request is refused, or None to serve it."""
        headers = Headers(scope=scope)
        host = headers.get("host")
        if self.check_host and host is not None and not self.serves(host):
            return exceptions.PermissionDenied(
                f"Host {host!r} is not served here: this batchd answers loopback names "
                "(localhost, 127.0.0.1, [::1]) and the allowed_hosts setting (BATCHD_ALLOWED_HOSTS)"
            )
        method = scope["method"]
        if method not in SAFE_METHODS:
            problem = self.foreign_origin(scope, headers)
            if problem:
                return exceptions.PermissionDenied(problem)
        if method in BODY_METHODS and scope["path"].startswith(API_PREFIX) and _has_body(headers):
            media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if (scope["path"], media_type) == UPLOAD:
                return (
                    None  # the Files API's upload (any other method: 405); a cross-site one was refused above
                )
            if media_type != JSON:
                got = f"got {media_type!r}" if media_type else "none was given"
                return exceptions.UnsupportedMediaType(
                    f"Content-Type must be {JSON} for a request body ({got})"
                )
        return None

    def serves(self, host: str) -> bool:
        name = values.host_name(host)
        return name is not None and (values.is_loopback(name) or name in self.allowed)

    def foreign_origin(self, scope: Scope, headers: Headers) -> str | None:
        """What is wrong with a state-changing request's origin, or None if it is this server's."""
        origin = headers.get("origin")
        if origin is None:
            # Browsers send Origin with every POST; Sec-Fetch-Site is a second witness for others.
            if headers.get("sec-fetch-site") in CROSS_SITE:
                return "cross-site requests are not allowed"
            return None
        if origin.strip() == "null":
            return "requests from an opaque origin (Origin: null) are not allowed"
        own = origin_of(scope.get("scheme", "http"), headers.get("host", ""))
        if url_origin(origin) in {own, self.public_origin} - {None}:
            return None
        return (
            f"cross-origin requests are not allowed: Origin {origin!r} is not this server's "
            "(behind a proxy, set public_url to the URL browsers use)"
        )


def _has_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    return "transfer-encoding" in headers or (length is not None and length.strip() not in ("", "0"))
