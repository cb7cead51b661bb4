"""backends/sse.post_events on the wire (aiohttp), against real loopback servers scripted per
connection: events split anywhere, errors before and after the first event, a body that is not a
stream, and an iterator closed early closing its connection."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from batchd import exceptions
from batchd.backends import sse
from batchd.backends.http import Upstream
from tests.integration.backends_upstream import Scripted, read_request

BODY = (
    b": keep-alive comment\r\n\r\n"
    b'event: message_start\r\ndata: {"a": 1}\r\n\r\n'
    b"data: first line\ndata: second line\n\n"
    b"event: ping\ndata:{}\n\n"
    b"data: [DONE]\n\n"
)


def chunked_head() -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def serve_pieces(scripted: Scripted, pieces: Sequence[bytes], *, end: bool = True) -> str:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(chunked_head())
        for piece in pieces:
            writer.write(chunk(piece))
            await writer.drain()
            await asyncio.sleep(0.001)
        if end:
            writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    return await scripted.start(handler)


async def events(url: str) -> list[tuple[str, str]]:
    up = Upstream("u", url, concurrency=2, timeout=5)
    try:
        return [e async for e in sse.post_events(up, "/x", {"q": 1})]
    finally:
        await up.aclose()


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
async def test_events_split_anywhere(scripted: Scripted, size: int) -> None:
    pieces = [BODY[i : i + size] for i in range(0, len(BODY), size)]
    got = await events(await serve_pieces(scripted, pieces))
    assert got == [
        ("message_start", '{"a": 1}'),
        ("message", "first line\nsecond line"),
        ("ping", "{}"),
        ("message", "[DONE]"),
    ]


async def test_an_error_status_is_raised_before_any_event(scripted: Scripted) -> None:
    body = b'{"error": {"type": "rate_limit_error", "message": "slow down"}}'
    url, _ = await scripted.canned(status=429, body=body, headers={"retry-after": "3"})
    with pytest.raises(exceptions.BackendError, match="slow down") as info:
        await events(url)
    assert (info.value.status, info.value.error_type, info.value.retryable) == (429, "rate_limit_error", True)
    assert info.value.retry_after == 3


async def test_a_json_answer_is_one_whole_event(scripted: Scripted) -> None:
    url, received = await scripted.canned(body=b'{"id": "x"}')
    assert await events(url) == [(sse.WHOLE, '{"id": "x"}')]
    assert received[0][1]["accept"] == "text/event-stream"


async def test_a_connection_cut_mid_stream_raises_after_the_events_sent(scripted: Scripted) -> None:
    url = await serve_pieces(scripted, [b"data: one\n\n", b"data: tw"], end=False)
    up = Upstream("u", url, concurrency=2, timeout=5)
    seen = []
    with pytest.raises(exceptions.BackendError) as info:
        async for event in sse.post_events(up, "/x", {}):
            seen.append(event)
    await up.aclose()
    assert seen == [("message", "one")]
    assert info.value.status == 502 and info.value.retryable


async def test_an_unreachable_upstream(scripted: Scripted) -> None:
    url = await scripted.start(lambda r, w: asyncio.sleep(0))
    scripted.close()
    await asyncio.sleep(0.01)
    with pytest.raises(exceptions.BackendError, match="failed"):
        await events(url)


async def test_closing_the_iterator_closes_the_connection(scripted: Scripted) -> None:
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(chunked_head())
        try:
            for i in range(500):
                writer.write(chunk(f"data: {i}\n\n".encode()))
                await writer.drain()
                await asyncio.sleep(0.01)
        except ConnectionError:  # the client closed its end: writing to it fails
            closed.set()
        writer.close()

    up = Upstream("u", await scripted.start(handler), concurrency=2, timeout=30)
    stream = sse.post_events(up, "/x", {})
    assert await anext(stream) == ("message", "0")
    await stream.aclose()
    await asyncio.wait_for(closed.wait(), 10)
    await up.aclose()


async def test_kept_alive_after_a_stream_read_to_its_end(scripted: Scripted) -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                await read_request(reader)
                writer.write(chunked_head() + chunk(b"data: x\n\n") + b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    up = Upstream("u", await scripted.start(handler), concurrency=2, timeout=5)
    for _ in range(3):
        assert [e async for e in sse.post_events(up, "/x", {})] == [("message", "x")]
    await up.aclose()
    assert connections == 1
