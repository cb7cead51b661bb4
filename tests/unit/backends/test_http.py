"""backends/http.Upstream on the wire (aiohttp), against real loopback servers scripted per connection."""

from __future__ import annotations

import asyncio

import pytest

from batchd import exceptions
from batchd.backends.http import Upstream
from tests.integration.backends_upstream import Scripted, answer, parse_request, read_request


async def test_keep_alive_reuses_one_connection(scripted: Scripted) -> None:
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

    up = Upstream("u", await scripted.start(handler), concurrency=4, timeout=5, headers={"x-key": "k"})
    got = [(await up.post_json("/chat", {"i": i}))[0]["n"] for i in range(5)]
    await up.aclose()
    assert got == [1, 2, 3, 4, 5] and connections == 1
    line, headers, body = parse_request(seen[0])
    assert line == "POST /chat HTTP/1.1" and body == b'{"i":0}'
    assert headers["content-type"] == "application/json" and headers["x-key"] == "k"


async def test_chunked_answer_and_connection_close(scripted: Scripted) -> None:
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

    up = Upstream("u", await scripted.start(handler), concurrency=2, timeout=5)
    assert (await up.post_json("/x", {}))[0] == {"a": 1}
    assert (await up.post_json("/x", {}))[0] == {"a": 1}
    await up.aclose()
    assert connections == 2


async def test_idle_connection_closed_by_server_is_not_reused(scripted: Scripted) -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(answer(b"{}"))  # keep-alive promised, then the server drops the connection
        await writer.drain()
        writer.close()

    up = Upstream("u", await scripted.start(handler), concurrency=2, timeout=5)
    assert (await up.post_json("/x", {}))[0] == {}
    await asyncio.sleep(0.05)  # the close reaches us while the connection is idle
    assert (await up.post_json("/x", {}))[0] == {}
    await up.aclose()
    assert connections == 2


async def test_connection_dropped_before_an_answer_is_sent_once_more(scripted: Scripted) -> None:
    requests = connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The first connection answers one request, then takes the next and closes without an
        # answer, as a server whose keep-alive timer fired at that moment does.
        nonlocal requests, connections
        connections += 1
        mine = 0
        try:
            while True:
                await read_request(reader)
                requests += 1
                mine += 1
                if connections == 1 and mine == 2:
                    break
                writer.write(answer(b'{"ok": true}'))
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    up = Upstream("u", await scripted.start(handler), concurrency=1, timeout=5)
    assert (await up.post_json("/x", {}))[0] == {"ok": True}
    assert (await up.post_json("/x", {}))[0] == {"ok": True}
    await up.aclose()
    assert (requests, connections) == (3, 2)


async def test_a_server_that_always_drops_fails_after_two_tries(scripted: Scripted) -> None:
    requests = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        await read_request(reader)
        requests += 1
        writer.close()

    up = Upstream("u", await scripted.start(handler), concurrency=1, timeout=5)
    with pytest.raises(exceptions.BackendError) as info:
        await up.post_json("/x", {})
    await up.aclose()
    assert info.value.status == 502 and info.value.retryable and requests == 2


async def test_errors_map_to_backend_errors(scripted: Scripted) -> None:
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

    up = Upstream("u", await scripted.start(stall), concurrency=1, timeout=0.2)
    with pytest.raises(exceptions.BackendTimeout) as timeout:
        await up.post_json("/x", {})
    await up.aclose()
    assert timeout.value.retryable and "did not answer within 0.2s" in str(timeout.value)
    for handler in (hang_up, garbage):
        up = Upstream("u", await scripted.start(handler), concurrency=1, timeout=5)
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


async def test_at_most_max_connections(scripted: Scripted) -> None:
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

    up = Upstream("u", await scripted.start(handler), concurrency=3, timeout=5)
    await asyncio.gather(*(up.post_json("/x", {}) for _ in range(12)))
    await up.aclose()
    assert peak == 3


async def test_proxy_from_the_environment(scripted: Scripted, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy, via_proxy = await scripted.canned(body=b'{"via": "proxy"}')
    direct, reached = await scripted.canned(body=b'{"via": "direct"}')
    monkeypatch.setenv("HTTP_PROXY", proxy)
    up = Upstream("u", "http://upstream.invalid/v1", concurrency=1, timeout=5)
    assert (await up.post_json("/x", {}))[0] == {"via": "proxy"}
    await up.aclose()
    assert via_proxy[0][0] == "POST http://upstream.invalid/v1/x HTTP/1.1"
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    up = Upstream("u", direct, concurrency=1, timeout=5)
    assert (await up.post_json("/x", {}))[0] == {"via": "direct"}
    await up.aclose()
    assert len(via_proxy) == 1 and len(reached) == 1
