"""A streamed chat or text completion from an OpenAI-compatible upstream (`openai`, `llamacpp`),
passed through as it arrives: the realtime OpenAI wire's `stream: true` (api/openai/realtime.py).

The body goes as `Passthrough.call` sends it but for `stream` and `stream_options`, which stay as
the client sent them. `open_stream` waits for the upstream's status: an HTTP error answer raises as
`Upstream.post_json` does (exceptions.UpstreamStatus with the upstream's JSON body), before any
byte reaches the client. `events` then yields the upstream's Server-Sent Events one by one as they
arrive, each `data:` JSON's `model` set back to the name the client asked for when the route maps
it onto an `upstream_model`. A failure once the stream has begun (the upstream drops, or goes past
the route's timeout) ends it with one `data: {"error": …}` event in OpenAI's envelope, which the
openai SDK raises as an APIError.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from batchd import exceptions
from batchd.backends import http
from batchd.backends.endpoints.base import envelope
from batchd.backends.endpoints.passthrough import Passthrough


async def open_stream(ends: Passthrough, endpoint: str, body: dict[str, Any]) -> aiohttp.ClientResponse:
    """The upstream's answer to `body` (`stream: true`) at `endpoint`, its status 2xx; else the
    failure raised as the batch lines' calls raise it."""
    upstream = ends.upstream
    sent = dict(body)
    if ends.backend.upstream_model:
        sent["model"] = ends.backend.upstream_model
    where = f"{upstream.name} ({upstream.base_url}{endpoint.removeprefix('/v1')})"
    session = upstream.session()
    try:
        response = await session.post(
            upstream.base_url + endpoint.removeprefix("/v1"), data=orjson.dumps(sent)
        )
    except TimeoutError as exc:
        raise exceptions.BackendTimeout(f"{where} did not answer within {upstream.timeout:g}s") from exc
    except aiohttp.ClientError as exc:
        raise exceptions.BackendError(
            f"{where} could not be reached: {type(exc).__name__}: {exc}", status=502, retryable=True
        ) from exc
    if response.status >= 400:
        try:
            content = await response.read()
        finally:
            response.release()
        raise http.error_from_response(
            where, response.status, response.headers, content, response.reason or ""
        )
    return response


async def events(response: aiohttp.ClientResponse, model: str | None) -> AsyncIterator[bytes]:
    """The upstream's events, each as it is complete; `model`: the name to put back (None: as sent)."""
    pending = bytearray()
    try:
        async for line in response.content:
            if line.strip():
                pending += _mapped(line, model) if model else line
                continue
            if pending:
                yield bytes(pending) + b"\n"
                pending.clear()
        if pending:
            yield bytes(pending) + b"\n"
    except (TimeoutError, aiohttp.ClientError) as exc:
        failure = "did not finish in time" if isinstance(exc, TimeoutError) else f"failed: {exc}"
        error = envelope(f"The upstream's stream {failure}", "server_error")
        yield b"data: " + orjson.dumps(error) + b"\n\n"
    finally:
        response.release()


def _mapped(line: bytes, model: str) -> bytes:
    """`data: {…}` with its `model` set to `model`; any other line as it is."""
    if not line.startswith(b"data:"):
        return line
    payload = line[5:].strip()
    if payload == b"[DONE]":
        return line
    try:
        chunk = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return line
    if isinstance(chunk, dict) and "model" in chunk:
        chunk["model"] = model
        return b"data: " + orjson.dumps(chunk) + b"\n"
    return line
