"""The body deadline: a request's body must reach the server in time, or the request gets 408.

The HTTP server (granian, run by cli/server.py) gives a request's headers `header_timeout` to
arrive but has no deadline for its body, so a client sending a byte now and then could hold a
connection for ever. `BodyDeadline` gives each request a budget of `body_timeout` plus one second
per MB its Content-Length declares (a 256 MB create over a slow link still fits), and charges to it
only the time the app spends waiting in `receive()` for body bytes: the app's own work between two
reads is not the client's delay. When the budget runs out, the read raises
`exceptions.RequestTimeout`, which api/errors.py renders as a 408 in the error envelope like any
other error, and the response says `Connection: close`, so the server drops the connection with
its unread bytes. A request that never reads its body costs nothing.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from batchd import exceptions

BYTES_PER_SECOND = 1024 * 1024  # declared body size granted one second each, on top of body_timeout


class BodyDeadline:
    """ASGI middleware: a request's body reads fail with 408 once they have waited too long."""

    def __init__(self, app: ASGIApp, timeout: float, max_bytes: int) -> None:
        self.app = app
        self.timeout = timeout
        self.max_bytes = max_bytes  # the largest body any route takes: no declared size earns more time

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        reader = _Reader(self, scope, receive, send)
        await self.app(scope, reader.receive, reader.send)

    def budget(self, scope: Scope) -> float:
        """Seconds this request's body may keep the server waiting, in all."""
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit():
                return self.timeout + min(int(value), self.max_bytes) / BYTES_PER_SECOND
        return self.timeout  # chunked, or no body


class _Reader:
    """One request's receive() and send(), with its body's budget."""

    __slots__ = ("_deadline", "_receive", "_scope", "_send", "budget", "done", "expired", "left")

    def __init__(self, deadline: BodyDeadline, scope: Scope, receive: Receive, send: Send) -> None:
        self._deadline, self._scope, self._receive, self._send = deadline, scope, receive, send
        self.budget = self.left = 0.0  # set at the first read, so a request that reads nothing pays nothing
        self.done = False  # the whole body has arrived: later reads only wait for a disconnect
        self.expired = False

    async def receive(self) -> Message:
        if self.done:
            return await self._receive()
        if self.expired:
            return {"type": "http.disconnect"}
        if not self.budget:
            self.budget = self.left = self._deadline.budget(self._scope)
        loop = asyncio.get_running_loop()
        started = loop.time()
        timeout = asyncio.timeout(self.left)
        try:
            async with timeout:
                message = await self._receive()
        except TimeoutError:
            if not timeout.expired():
                raise
            self.expired = True
            raise exceptions.RequestTimeout(
                f"The request body did not arrive in time: the server waited {self.budget:g}s for it "
                "(body_timeout, plus 1s per MB declared)"
            ) from None
        self.left -= loop.time() - started
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.done = True
        return message

    async def send(self, message: Message) -> None:
        if self.expired and message["type"] == "http.response.start":
            # The rest of the body may still be on its way: the connection cannot be reused.
            message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
        await self._send(message)
