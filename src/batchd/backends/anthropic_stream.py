"""An Anthropic-compatible upstream's stream (`stream: true`), passed through event by event.

Only what the client must see as batchd's is changed: `message_start`'s model becomes the name the
client asked for (the upstream may know it as `upstream_model`), and the fields compatible servers
leave out are filled in (usage counts 0, a thinking block's empty `signature`, a tool_use block's
empty `input`, as llama.cpp's `/v1/messages` sends them). Events are otherwise passed as they come,
in their order (llama.cpp's may interleave two blocks; the SDK follows the indices). An `error`
event from the upstream raises its `BackendError` (an HTTP error when nothing was sent yet, else
batchd's own `error` event). An upstream that answers a whole Message instead (it does not
stream) is sent as its events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from batchd import exceptions, models
from batchd.backends import sse
from batchd.backends.http import ANTHROPIC_ERROR_TYPES, Upstream
from batchd.backends.streaming import Event, message_events

_BLOCK_FIELDS: dict[str, tuple[tuple[str, Any], ...]] = {
    "text": (("text", ""),),
    "thinking": (("thinking", ""), ("signature", "")),
    "tool_use": (("input", {}),),
    "server_tool_use": (("input", {}),),
}
_USAGE = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


async def passthrough(
    upstream: Upstream,
    body: dict[str, Any],
    headers: dict[str, str] | None,
    *,
    model: str,
    whole: Callable[[dict[str, Any], str, str], dict[str, Any]],
) -> AsyncIterator[Event]:
    """The upstream's events for `body`, the model named `model`; `whole(data, model, upstream)`
    checks a whole Message answered instead (anthropic.normalise_message)."""
    started = False
    async for name, raw in sse.post_events(upstream, "/v1/messages", body, headers):
        if name == sse.WHOLE:  # an upstream that does not stream: its whole Message
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise _bad(upstream.name, "a body that is not JSON") from None
            if not isinstance(data, dict):
                raise _bad(upstream.name, "JSON that is not an object")
            for event in message_events(whole(data, model, upstream.name)):
                yield event
            return
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _bad(upstream.name, f"a {name} event whose data is not JSON") from None
        if not isinstance(data, dict):
            raise _bad(upstream.name, f"a {name} event whose data is not a JSON object")
        kind = data.pop("type", name)
        if kind == "error":
            err = data.get("error") or {}
            kind = str(err.get("type"))
            raise exceptions.BackendError(
                f"{upstream.name} failed while streaming: {err.get('message', err)}",
                status=529 if kind == "overloaded_error" else 500,
                error_type=kind if kind in ANTHROPIC_ERROR_TYPES else "api_error",
                retryable=kind in ("overloaded_error", "api_error"),
            )
        if kind == "message_start":
            data = {**data, "message": _start(data.get("message") or {}, model)}
            started = True
        elif kind == "content_block_start" and isinstance(data.get("content_block"), dict):
            data = {**data, "content_block": _block(data["content_block"])}
        elif not started:
            if kind == "ping":
                continue
            raise _bad(upstream.name, f"a stream that begins with {kind!r}, not message_start")
        yield kind, data
    if not started:
        raise _bad(upstream.name, "no stream (no message_start event)")


def _start(message: dict[str, Any], model: str) -> dict[str, Any]:
    usage = dict(message.get("usage") or {})
    for key in _USAGE:
        usage.setdefault(key, 0)
    msg_id = message.get("id")
    if not isinstance(msg_id, str) or not msg_id:
        msg_id = "msg_" + models.new_request_id()[4:]
    return {**message, "id": msg_id, "model": model, "usage": usage}


def _block(block: dict[str, Any]) -> dict[str, Any]:
    """A started block with the fields the SDK requires that compatible servers leave out
    (llama.cpp: a thinking block's `signature`, a tool_use block's `input`)."""
    for key, value in _BLOCK_FIELDS.get(str(block.get("type")), ()):
        if key not in block:
            block = {**block, key: value}
    return block


def _bad(upstream: str, what: str) -> exceptions.BackendError:
    return exceptions.BackendError(f"{upstream} answered {what}", status=502, error_type="api_error")
