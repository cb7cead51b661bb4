"""The lean HTTP/1.1 transport the openai/anthropic backends use for plain-http upstreams, against a real
loopback server scripted per connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from batchd import exceptions
from batchd.backends.http import Upstream
from batchd.backends.http_pool import LeanTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def answer(body: bytes, *, close: bool = False, status: int = 200) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


@pytest.fixture
async def server() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> str:
        srv = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(srv)
        return f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"

    yield start
    for srv in servers:
        srv.close()


async def test_keep_alive_reuses_one_connection(server: Callable[[Handler], Awaitable[str]]) -> None:
    connections = 0
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                seen.append(await read_request(reader))
            except asyncio.IncompleteReadError:
                break
            writer.write(answer(b'{"n": %d}' % len(seen)))
            await writer.drain()
        writer.close()

    up = Upstream("u", await server(handler), concurrency=4, timeout=5)
    got = [(await up.post_json("/chat", {"i": i}))[0]["n"] for i in range(5)]
    await up.aclose()
    assert got == [1, 2, 3, 4, 5] and connections == 1
    assert seen[0].startswith(b"POST /chat HTTP/1.1\r\n") and seen[0].endswith(b'{"i":0}')
    assert b"\r\ncontent-type: application/json\r\n" in seen[0].lower()


async def test_chunked_answer_and_connection_close(server: Callable[[Handler], Awaitable[str]]) -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            b'5\r\n{"a":\r\n2\r\n1}\r\n0\r\n\r\n'
        )
        await writer.drain()
        writer.close()

    up = Upstream("u", await server(handler), concurrency=2, timeout=5)
    assert (await up.post_json("/x", {}))[0] == {"a": 1}
    assert (await up.post_json("/x", {}))[0] == {"a": 1}
    await up.aclose()
    assert connections == 2


async def test_idle_connection_closed_by_server_is_not_reused(
    server: Callable[[Handler], Awaitable[str]],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"{}"))  # keep-alive promised, then the server drops the connection
        await writer.drain()
        writer.close()

    transport = LeanTransport(2)
    async with httpx.AsyncClient(mounts={"http://": transport}) as client:
        base = await server(handler)
        assert (await client.post(base + "/x", content=b"{}")).status_code == 200
        await asyncio.sleep(0.05)  # the close reaches us while the connection is idle
        assert (await client.post(base + "/x", content=b"{}")).json() == {}


async def test_errors_map_to_backend_errors(server: Callable[[Handler], Awaitable[str]]) -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{")
        await writer.drain()
        writer.close()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()

    up = Upstream("u", await server(stall), concurrency=1, timeout=0.2)
    with pytest.raises(exceptions.BackendTimeout):
        await up.post_json("/x", {})
    await up.aclose()
    for handler in (hang_up, garbage):
        up = Upstream("u", await server(handler), concurrency=1, timeout=5)
        with pytest.raises(exceptions.BackendError) as info:
            await up.post_json("/x", {})
        await up.aclose()
        assert info.value.status == 502 and info.value.retryable


async def test_connection_refused_is_retryable() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    up = Upstream("u", f"http://127.0.0.1:{port}", concurrency=1, timeout=5)
    with pytest.raises(exceptions.BackendError) as info:
        await up.post_json("/x", {})
    await up.aclose()
    assert info.value.status == 502 and info.value.retryable and "could not be reached" in str(info.value)


async def test_at_most_max_connections(server: Callable[[Handler], Awaitable[str]]) -> None:
    open_now = peak = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        try:
            while True:
                await read_request(reader)
                await asyncio.sleep(0.02)
                writer.write(answer(b"{}"))
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            open_now -= 1
            writer.close()

    up = Upstream("u", await server(handler), concurrency=3, timeout=5)
    await asyncio.gather(*(up.post_json("/x", {}) for _ in range(12)))
    await up.aclose()
    assert peak == 3


def test_lean_transport_only_for_plain_http_without_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    def lean(up: Upstream) -> bool:
        return any(isinstance(m, LeanTransport) for m in up.client._mounts.values())  # type: ignore[attr-defined]

    assert lean(Upstream("u", "http://h", concurrency=2, timeout=5))
    assert not lean(
        Upstream(
            "u",
            "http://h",
            concurrency=2,
            timeout=5,
            transport=httpx.MockTransport(lambda r: httpx.Response(200)),
        )
    )
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")
    assert not lean(Upstream("u", "http://h", concurrency=2, timeout=5))
