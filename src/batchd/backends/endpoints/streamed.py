"""A streamed chat or text completion from an OpenAI-compatible upstream (`openai`, `llamacpp`),
for the realtime OpenAI wire's `stream: true` (api/openai/realtime.py).

The body goes as `Passthrough.call` sends it but for `stream` and `stream_options`, which stay as
the client sent them, and is read with backends/sse.py: `open_stream` waits for the upstream's
first event, so that an HTTP error answer (exceptions.UpstreamStatus with the upstream's JSON
body), an unreachable upstream or a timeout raises before any byte reaches the client; the events
then come one by one as they arrive, and a failure after the first raises from the iteration.
`mapped` sets a chunk's `model` back to the name the client asked for.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, cast

import orjson

from batchd.backends import sse
from batchd.backends.endpoints.passthrough import Passthrough

Events = AsyncGenerator[tuple[str, str], None]  #: (event name, data), as backends/sse.py reads them


async def open_stream(ends: Passthrough, endpoint: str, body: dict[str, Any]) -> Events:
    """The upstream's events for `body` (`stream: true`) at `endpoint`, its first one already in."""
    sent = dict(body)
    if ends.backend.upstream_model:
        sent["model"] = ends.backend.upstream_model
    events = cast(Events, sse.post_events(ends.upstream, endpoint.removeprefix("/v1"), sent))
    try:
        first = await anext(events)
    except BaseException:
        await events.aclose()
        raise
    return _primed(first, events)


async def _primed(first: tuple[str, str], rest: Events) -> Events:
    try:
        yield first
        async for event in rest:
            yield event
    finally:
        await rest.aclose()  # closes the upstream's connection, if the stream was left early


def mapped(data: str, model: str) -> str:
    """A chunk's JSON with its `model` set to `model`; anything else (`[DONE]`) as it is."""
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data
    if isinstance(chunk, dict) and "model" in chunk:
        chunk["model"] = model
        return orjson.dumps(chunk).decode()
    return data
