"""One structured log line and one metrics sample per HTTP request, tagged with its request id.

The id is chosen here, before routing, and stored where `api.errors.request_id` finds it, so the
`request-id` header, the error envelope and the log line all carry the same one.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from batchd import models
from batchd.api import errors
from batchd.metrics import Metrics

logger = logging.getLogger("batchd.access")


class AccessLog:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = scope.setdefault("batchd.request_id", models.new_request_id())
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"request-id" for k, _ in headers):
                    headers.append((b"request-id", rid.encode()))
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = _route(scope)
            self.metrics.http_request(scope["method"], route, status, elapsed)
            logger.info(
                "request_id=%s method=%s path=%s route=%s status=%d duration_ms=%.1f%s",
                rid,
                scope["method"],
                scope["path"],
                route,
                status,
                elapsed * 1000,
                ' note="client closed request"' if status == errors.CLIENT_CLOSED else "",
            )


def _route(scope: Scope) -> str:
    """The matched route's template (bounded label values), not the raw path."""
    route: object = scope.get("route")  # the matched starlette route, if any
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
