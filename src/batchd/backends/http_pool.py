"""A lean HTTP/1.1 keep-alive transport for plain-`http://` upstreams (an engine on the same host or LAN).

httpx's default transport (httpcore over anyio) costs more CPU per call than a small engine takes
to answer one: profiled against llama.cpp at 16 slots, it was half of batchd's process time, on
machines where that CPU is taken from the engine itself. This transport keeps httpx's client (and
so its API, errors and tests) and replaces only the wire part: one asyncio protocol per
connection, the request written in one call, the response parsed by httptools (C, shipped with
uvicorn[standard]), idle connections reused last-in first-out.

Failures are raised as httpx's own exceptions (ConnectError, ConnectTimeout, ReadTimeout,
RemoteProtocolError), so `http.Upstream` maps them as before. A request that finds a reused
connection closed before any answer arrived is sent once more on a new connection, as httpcore does.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import httptools
import httpx

DEFAULT_PORTS = {"http": 80}


class _Connection(asyncio.Protocol):
    """One TCP connection; at most one request in flight on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes]] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._received = False  # any byte of the current answer

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP answer: {exc}"))
            self.close()

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(
            httpx.RemoteProtocolError(
                "the server closed the connection without a complete answer"
                + (f" ({type(exc).__name__}: {exc})" if exc else "")
            )
        )

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        if not self._parser.should_keep_alive():
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result((self._parser.get_status_code(), self._headers, b"".join(self._body)))

    # ours
    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def send(self, data: bytes) -> asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes]]:
        assert self.transport is not None
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self._headers, self._body, self._received = [], [], False
        self.transport.write(data)
        return waiter

    @property
    def answered_nothing(self) -> bool:
        return not self._received

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class LeanTransport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 for `http://` URLs; at most `max_connections` open at once."""

    def __init__(self, max_connections: int = 64) -> None:
        self._idle: dict[tuple[str, int], deque[_Connection]] = {}
        self._slots = asyncio.Semaphore(max_connections)
        self._max_idle = max_connections
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "http":
            raise httpx.UnsupportedProtocol(f"LeanTransport serves http:// only, not {request.url}")
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        host = request.url.host
        port = request.url.port or DEFAULT_PORTS["http"]
        body = await request.aread()
        data = _encode(request, body, host, request.url.port)
        async with self._slots:
            for fresh in (False, True):
                conn = None if fresh else self._take_idle(host, port)
                reused = conn is not None
                if conn is None:
                    conn = await self._connect(request, host, port, timeouts.get("connect"))
                try:
                    status, headers, content = await self._exchange(request, conn, data, timeouts.get("read"))
                except httpx.RemoteProtocolError:
                    conn.close()
                    if reused and conn.answered_nothing:
                        continue  # the server had closed the idle connection: once more, on a new one
                    raise
                except BaseException:
                    conn.close()
                    raise
                self._put_idle(host, port, conn)
                return httpx.Response(
                    status, headers=headers, content=content, extensions={"http_version": b"HTTP/1.1"}
                )
        raise AssertionError("unreachable")

    async def _connect(
        self, request: httpx.Request, host: str, port: int, timeout: float | None
    ) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(_Connection, host, port)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out", request=request) from exc
        except OSError as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}", request=request) from exc
        return conn

    async def _exchange(
        self, request: httpx.Request, conn: _Connection, data: bytes, timeout: float | None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        waiter = conn.send(data)
        timer: asyncio.TimerHandle | None = None
        if timeout is not None:
            # One timer handle per call: far cheaper than a timeout context around the await.
            def expire() -> None:
                if not waiter.done():
                    waiter.set_exception(httpx.ReadTimeout(f"no answer within {timeout:g}s", request=request))
                conn.close()

            timer = asyncio.get_running_loop().call_later(timeout, expire)
        try:
            return await waiter
        except httpx.TransportError as exc:
            exc.request = request
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _take_idle(self, host: str, port: int) -> _Connection | None:
        idle = self._idle.get((host, port))
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    def _put_idle(self, host: str, port: int, conn: _Connection) -> None:
        if conn.closed or self._closed:
            conn.close()
            return
        idle = self._idle.setdefault((host, port), deque())
        if len(idle) >= self._max_idle:
            idle.popleft().close()
        idle.append(conn)

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()


def _encode(request: httpx.Request, body: bytes, host: str, port: int | None) -> bytes:
    target = request.url.raw_path
    lines = [request.method.encode() + b" " + target + b" HTTP/1.1"]
    names = set()
    for name, value in request.headers.raw:
        lower = name.lower()
        names.add(lower)
        if lower in (b"transfer-encoding", b"content-length"):
            continue
        lines.append(name + b": " + value)
    if b"host" not in names:
        lines.append(b"Host: " + (f"{host}:{port}" if port else host).encode())
    lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def lean_mounts(max_connections: int) -> dict[str, Any]:
    """httpx `mounts` that send plain-http URLs through LeanTransport."""
    return {"http://": LeanTransport(max_connections)}
