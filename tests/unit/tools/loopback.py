"""A real HTTP server on loopback for the tools' tests: aiohttp.web in the test's own event loop.

Each test sets `server.handle` (request -> response); every request is recorded. Used as
`async with Loopback() as server:`, usually from a fixture of the test module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Loopback:
    """One aiohttp server on 127.0.0.1 whose every request goes to `handle`."""

    def __init__(self) -> None:
        self.requests: list[web.Request] = []
        self.handle: Handler = _not_found
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Loopback:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # A short shutdown: handlers still sleeping (the slow pages) are cancelled at the end.
        self._runner = web.AppRunner(app, shutdown_timeout=0.1, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Loopback:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        return await self.handle(request)


async def _not_found(request: web.Request) -> web.StreamResponse:
    return web.Response(status=404, text="no handler")
