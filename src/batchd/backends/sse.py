"""A streamed upstream answer: `POST` a JSON body and read the Server-Sent Events it answers.

The failures map as `Upstream` maps a whole answer's (http.py): before the first event, an HTTP
error status or an unreachable upstream raises its `BackendError` (so the caller can still answer
with an ordinary error); after it, a dropped connection or the timeout raises `BackendError` /
`BackendTimeout` from the iteration. Closing the iterator early closes the connection (an unread
body is never reused), which is how an upstream learns that the client went away.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from batchd import exceptions
from batchd.backends.http import Upstream, error_from_response

WHOLE = "whole"  #: the event name of an answer that is not a stream: its JSON body as data


async def post_events(
    upstream: Upstream, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> AsyncIterator[tuple[str, str]]:
    """The events of the upstream's answer to `body` as (event name, data); `message` when the
    event is unnamed (OpenAI's chunks). An upstream that answers JSON rather than a stream (it
    does not stream) gives one event, WHOLE, its body as data."""
    where = f"{upstream.name} ({upstream.base_url}{path})"
    wanted = {"accept": "text/event-stream", **(headers or {})}
    started = False
    for last in (False, True):
        try:
            async with upstream.session().post(
                upstream.base_url + path, data=orjson.dumps(body), headers=wanted
            ) as response:
                if response.status >= 400:
                    content = await response.read()
                    raise error_from_response(
                        where, response.status, response.headers, content, response.reason or ""
                    )
                if response.content_type == "application/json":  # the upstream does not stream
                    content = await response.read()
                    started = True
                    yield WHOLE, content.decode("utf-8", "replace")
                    return
                async for event in _events(response):
                    started = True
                    yield event
            return
        except TimeoutError as exc:
            raise exceptions.BackendTimeout(
                f"{where} did not answer within {upstream.timeout:g}s ({type(exc).__name__})"
            ) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            # Before any answer: most often a kept-alive connection the server had just closed,
            # sent once more at once, as Upstream does.
            if last or started:
                raise _failed(where, exc) from exc
        except aiohttp.ClientError as exc:
            raise _failed(where, exc) from exc


def _failed(where: str, exc: Exception) -> exceptions.BackendError:
    return exceptions.BackendError(
        f"{where} failed: {type(exc).__name__}: {exc}", status=502, error_type="api_error", retryable=True
    )


async def _events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, str]]:
    pending = b""
    name, data = "", list[str]()
    async for chunk in response.content.iter_any():
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line = raw.rstrip(b"\r").decode("utf-8", "replace")
            if not line:
                if data:
                    yield name or "message", "\n".join(data)
                name, data = "", list[str]()
            elif line.startswith(":"):
                continue  # a comment (keep-alive)
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    name = value
                elif field == "data":
                    data.append(value)
    if data:
        yield name or "message", "\n".join(data)
