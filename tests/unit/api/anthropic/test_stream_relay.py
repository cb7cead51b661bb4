"""`stream.open_stream`: the backend's events relayed from a task of their own — what comes before
the first event is raised, what comes after it is an `error` event, the timeout covers the whole
call, and a relay closed early (a client gone) ends the backend's iteration."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from batchd import exceptions
from batchd.api.anthropic import stream
from batchd.backends.streaming import Event

START: Event = ("message_start", {"message": {"id": "m"}})


def producing(
    script: Callable[[], AsyncIterator[Event]],
) -> Callable[[], contextlib.AbstractAsyncContextManager[AsyncIterator[Event]]]:
    @contextlib.asynccontextmanager
    async def produce() -> AsyncIterator[AsyncIterator[Event]]:
        yield script()

    return produce


def decoded(chunks: list[bytes]) -> list[dict[str, Any]]:
    data = b"".join(chunks).split(b"\n\n")
    return [orjson.loads(part.split(b"data: ", 1)[1]) for part in data if part]


async def test_events_are_relayed_and_the_first_rewritten() -> None:
    async def script() -> AsyncIterator[Event]:
        yield START
        yield "message_stop", {}

    body = await stream.open_stream(
        producing(script), timeout=5, first=lambda e: (e[0], {"message": {"id": "changed"}})
    )
    events = decoded([chunk async for chunk in body])
    assert events == [{"type": "message_start", "message": {"id": "changed"}}, {"type": "message_stop"}]


async def test_a_failure_before_the_first_event_is_raised() -> None:
    async def script() -> AsyncIterator[Event]:
        raise exceptions.BackendError("no", status=429, error_type="rate_limit_error")
        yield START  # an async generator

    with pytest.raises(exceptions.BackendError, match="no"):
        await stream.open_stream(producing(script), timeout=5)


async def test_the_timeout_before_and_after_the_first_event() -> None:
    async def slow() -> AsyncIterator[Event]:
        await asyncio.sleep(5)
        yield START

    with pytest.raises(exceptions.BackendTimeout):
        await stream.open_stream(producing(slow), timeout=0.05)

    async def stalls() -> AsyncIterator[Event]:
        yield START
        await asyncio.sleep(5)
        yield "message_stop", {}

    body = await stream.open_stream(producing(stalls), timeout=0.05)
    events = decoded([chunk async for chunk in body])
    assert [e["type"] for e in events] == ["message_start", "error"]
    assert events[1]["error"]["type"] == "timeout_error"


async def test_a_failure_after_the_first_event_is_an_error_event() -> None:
    async def script() -> AsyncIterator[Event]:
        yield START
        yield "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
        raise exceptions.BackendError("the upstream dropped", status=502)

    body = await stream.open_stream(producing(script), timeout=5)
    events = decoded([chunk async for chunk in body])
    assert [e["type"] for e in events] == ["message_start", "content_block_start", "error"]
    assert events[-1]["error"] == {"type": "api_error", "message": "the upstream dropped"}


async def test_a_bug_is_an_api_error_event() -> None:
    async def script() -> AsyncIterator[Event]:
        yield START
        raise KeyError("oops")

    body = await stream.open_stream(producing(script), timeout=5)
    events = decoded([chunk async for chunk in body])
    assert events[-1]["error"]["type"] == "api_error" and "KeyError" in events[-1]["error"]["message"]


async def test_closing_the_relay_ends_the_backend() -> None:
    ended = asyncio.Event()

    async def endless() -> AsyncIterator[Event]:
        try:
            yield START
            while True:
                await asyncio.sleep(0.001)
                yield "ping", {}
        finally:
            ended.set()

    body = await stream.open_stream(producing(endless), timeout=30)
    assert b"message_start" in await anext(body)
    await body.aclose()  # type: ignore[attr-defined]
    await asyncio.wait_for(ended.wait(), 5)


async def test_a_stream_without_events_is_an_error() -> None:
    async def nothing() -> AsyncIterator[Event]:
        return
        yield START  # an async generator

    with pytest.raises(exceptions.BackendError, match="without an event"):
        await stream.open_stream(producing(nothing), timeout=5)
