"""Anthropic's stream of Server-Sent Events (`stream: true`) for `POST /v1/messages`.

The events come from the route's backend as they happen (`backends.streaming`): an OpenAI-compatible
upstream's tokens translated as they arrive, an Anthropic-compatible upstream's events passed
through, the server-tool loop's blocks as each tool runs, and the simulator's complete Message.
They add up to the non-streamed Message field for field, as the SDK's accumulator
(`client.messages.stream(...).get_final_message()`) rebuilds it: `message_delta` carries
`stop_reason`, `stop_sequence`, `stop_details`, `container`, and the cumulative usage.

`open_stream` runs the backend in a task of its own, holding the route's slot, and waits for the
first event: a failure before it is an ordinary HTTP error (the caller renders it); one after it
ends the stream with an `error` event, in Anthropic's envelope. A client that goes away cancels
that task, which closes the upstream call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from batchd import exceptions
from batchd.backends.streaming import DELTA_USAGE, Event, message_events

__all__ = ["DELTA_USAGE", "event_data", "events", "open_stream", "sse"]

logger = logging.getLogger("batchd.api")
QUEUE = 64  # events the upstream may run ahead of a slow client
_END: Event = ("", {})  # the producer's last item
_running: set[asyncio.Task[None]] = set()


def sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps({"type": event, **data}) + b"\n\n"


def event_data(message: dict[str, Any]) -> list[Event]:
    """The events of a complete `message` as (event name, data without its `type`)."""
    return list(message_events(message))


async def events(message: dict[str, Any]) -> AsyncIterator[bytes]:
    """The events of a complete `message`, encoded."""
    for name, data in message_events(message):
        yield sse(name, data)


def error_event(exc: exceptions.BatchdError) -> bytes:
    return sse("error", {"error": {"type": exc.error_type, "message": exc.message}})


async def open_stream(
    produce: Callable[[], contextlib.AbstractAsyncContextManager[AsyncIterator[Event]]],
    *,
    timeout: float,
    first: Callable[[Event], Event] = lambda e: e,
) -> AsyncIterator[bytes]:
    """The encoded stream of the events `produce()` opens (entered in a task of its own, which
    holds it until the last event), once its first event has come. Raises what the backend raised
    before that event (BackendError), or BackendTimeout: the call has `timeout` seconds in all,
    counted once `produce()` is entered (after the route's admission, as a plain call's).
    `first` rewrites the first event (`message_start`)."""
    queue: asyncio.Queue[Event | BaseException] = asyncio.Queue(QUEUE)

    async def run() -> None:
        try:
            async with produce() as stream, asyncio.timeout(timeout):
                async for event in stream:
                    await queue.put(event)
            await queue.put(_END)
        except TimeoutError:
            await queue.put(exceptions.BackendTimeout(f"The backend did not answer within {timeout:g}s"))
        except exceptions.BatchdError as exc:
            await queue.put(exc)
        except Exception as exc:  # a bug, shown to the client as Anthropic's api_error
            logger.exception("a streamed call failed")
            await queue.put(exceptions.BackendError(f"The stream failed: {type(exc).__name__}"))

    task = asyncio.create_task(run(), name="messages-stream")
    _running.add(task)  # the loop keeps only weak references to tasks
    task.add_done_callback(_running.discard)
    try:
        item = await queue.get()
    except BaseException:
        task.cancel()
        raise
    if isinstance(item, BaseException):
        await task
        raise item
    if item is _END:
        raise exceptions.BackendError("The backend's stream ended without an event", status=502)
    return _relay(first(item), queue, task)


async def _relay(
    head: Event, queue: asyncio.Queue[Event | BaseException], task: asyncio.Task[None]
) -> AsyncIterator[bytes]:
    """The events as they come; those already waiting are sent together, in one write (each write
    is a system call on both sides, and the upstream's reads often hold several events)."""
    try:
        pending = [sse(*head)]
        while True:
            while pending and queue.empty():
                out, pending = b"".join(pending), []
                yield out
            item = await queue.get()
            if isinstance(item, exceptions.BatchdError):
                pending.append(error_event(item))
                yield b"".join(pending)
                return
            if isinstance(item, BaseException) or item is _END:
                if pending:
                    yield b"".join(pending)
                return
            pending.append(sse(*item))
    finally:
        task.cancel()  # the client went away, or the stream ended: the upstream call ends too
        with contextlib.suppress(asyncio.CancelledError):
            await task
