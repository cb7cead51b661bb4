"""The security headers of every dashboard response: pages, their JSON twins, redirects, errors.

- `Content-Security-Policy`: scripts, styles, images and fetches from this origin only, no inline
  script or style (the templates carry none: app.js sets the progress bars' widths), forms post
  here only, and no framing (`frame-ancestors 'none'`; `X-Frame-Options: DENY` for older browsers).
- `X-Content-Type-Options: nosniff`: a JSON twin or a result's text is never run as a script.
- `Referrer-Policy: same-origin`: links out send no referrer. Not `no-referrer`: under it a browser
  sends `Origin: null` with the dashboard's own form posts, which the Origin check must refuse.
- `Cache-Control: no-store`: a workspace's batches are not kept in shared or browser caches.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
PAGE = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
STATIC = {"x-content-type-options": "nosniff"}  # app.js and app.css: cacheable, never sniffed


class SecurityHeaders:
    """Route middleware: sets `headers` on the response of the route it wraps."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                found = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    found[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
