"""A Message as Anthropic's stream of events, and the backends that stream their tokens as they come.

An event is `(name, data)`, data without its `type` (the wire adds it). A streaming backend has
`stream_message(params, betas=...)`, an async iterator of events in Anthropic's order:
`message_start`, per block `content_block_start` / `content_block_delta`… / `content_block_stop`,
`message_delta` (stop fields and the cumulative usage), `message_stop`. Its contract:

- a failure before the first event (the upstream's HTTP error, a refused request) raises
  `exceptions.BackendError` from the first `__anext__`, as `create_message` would;
- a failure after it raises `BackendError` from a later `__anext__` (the wire ends the stream with an
  `error` event);
- closing the iterator early (`aclose`, a cancelled task) closes the upstream call.

A backend without the method (the simulator) is streamed by `stream_of` from its complete Message
(`message_events`): exact in content, not incremental in timing.

`message_events` adds up, field for field, to the Message it is made of as the official SDK's
accumulator (`client.messages.stream(...).get_final_message()`) rebuilds it; `Accumulator` is that
rebuilding, for the server-tool loop (which needs each turn's content) and for tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import orjson

from batchd.backends.base import Backend

Event = tuple[str, dict[str, Any]]

#: The usage fields a `message_delta` repeats (the SDK's MessageDeltaUsage), cumulative.
DELTA_USAGE = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
    "server_tool_use",
    "output_tokens_details",
)
_EMPTY_INPUT = ("tool_use", "server_tool_use")


@runtime_checkable
class Streams(Protocol):
    """A backend that streams its upstream's tokens as they arrive (module docstring)."""

    def stream_message(
        self, params: dict[str, Any], *, betas: Sequence[str] = ()
    ) -> AsyncIterator[Event]: ...


def stream_of(backend: Backend, params: dict[str, Any], *, betas: Sequence[str] = ()) -> AsyncIterator[Event]:
    """The events of `backend` answering `params`: its own stream, or its complete Message's."""
    if isinstance(backend, Streams):
        return backend.stream_message(params, betas=betas)
    return _whole(backend, params, betas)


async def _whole(backend: Backend, params: dict[str, Any], betas: Sequence[str]) -> AsyncIterator[Event]:
    message = await backend.create_message(params, betas=betas)
    for event in message_events(message):
        yield event


# -- a complete Message as events ---------------------------------------------------------------


def start_of(message: dict[str, Any]) -> dict[str, Any]:
    """The Message `message_start` carries: no content, no stop fields, `output_tokens` 0."""
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    for key in ("stop_details", "container"):
        if key in start:
            start[key] = None
    start["usage"] = {**(message.get("usage") or {}), "output_tokens": 0}
    return start


def delta_of(message: dict[str, Any]) -> dict[str, Any]:
    """The `message_delta` data ending `message`: its stop fields and cumulative usage."""
    usage = message.get("usage") or {}
    delta = {
        "stop_reason": message.get("stop_reason"),
        "stop_sequence": message.get("stop_sequence"),
        "stop_details": message.get("stop_details"),
        "container": message.get("container"),
    }
    delta_usage = {key: usage[key] for key in DELTA_USAGE if key in usage}
    delta_usage.setdefault("output_tokens", 0)
    return {"delta": delta, "usage": delta_usage}


def message_events(message: dict[str, Any]) -> Iterator[Event]:
    """The events of `message`: its blocks whole (block_events), then its end."""
    yield "message_start", {"message": start_of(message)}
    for index, block in enumerate(message.get("content") or []):
        yield from block_events(index, block)
    yield "message_delta", delta_of(message)
    yield "message_stop", {}


def block_events(index: int, block: dict[str, Any]) -> Iterator[Event]:
    """One whole block at `index`: `content_block_start` (empty text, thinking or input), its
    deltas (`citations_delta` one per citation, then one `text_delta`; `thinking_delta` +
    `signature_delta`; one `input_json_delta`), `content_block_stop`. Other blocks (tool results)
    arrive whole in their start event."""
    kind = block.get("type")
    if kind == "text":
        citations = block.get("citations")
        start = {**block, "text": ""}
        if citations:
            start["citations"] = []
        yield "content_block_start", {"index": index, "content_block": start}
        for citation in citations or ():
            yield "content_block_delta", delta(index, "citations_delta", citation=citation)
        yield "content_block_delta", delta(index, "text_delta", text=block["text"])
    elif kind == "thinking":
        empty = {**block, "thinking": "", "signature": ""}
        yield "content_block_start", {"index": index, "content_block": empty}
        yield "content_block_delta", delta(index, "thinking_delta", thinking=block["thinking"])
        yield "content_block_delta", delta(index, "signature_delta", signature=block.get("signature", ""))
    elif kind in _EMPTY_INPUT:
        yield "content_block_start", {"index": index, "content_block": {**block, "input": {}}}
        partial = orjson.dumps(block.get("input", {})).decode()
        yield "content_block_delta", delta(index, "input_json_delta", partial_json=partial)
    else:
        yield "content_block_start", {"index": index, "content_block": block}
    yield "content_block_stop", {"index": index}


def delta(index: int, kind: str, **fields: Any) -> dict[str, Any]:
    """A `content_block_delta`'s data."""
    return {"index": index, "delta": {"type": kind, **fields}}


# -- events back to a Message -------------------------------------------------------------------


class Accumulator:
    """A Message rebuilt from its events, as the SDK's accumulator does; `message` once ended."""

    def __init__(self) -> None:
        self.message: dict[str, Any] = {}
        self._json: dict[int, str] = {}

    def add(self, name: str, data: dict[str, Any]) -> None:
        if name == "message_start":
            self.message = {**data["message"], "content": list(data["message"].get("content") or ())}
            self.message["usage"] = dict(self.message.get("usage") or {})
        elif name == "content_block_start":
            block = dict(data["content_block"])
            if "citations" in block and block["citations"] is not None:
                block["citations"] = list(block["citations"])
            self.message["content"].append(block)
        elif name == "content_block_delta":
            self._delta(data["index"], data["delta"])
        elif name == "content_block_stop":
            index = data["index"]
            if index in self._json:
                self.message["content"][index]["input"] = orjson.loads(self._json.pop(index) or "{}")
        elif name == "message_delta":
            for key, value in data["delta"].items():
                if key != "container" or value is not None:
                    self.message[key] = value
            usage = self.message["usage"]
            for key, value in data.get("usage", {}).items():
                if value is not None or key == "output_tokens":
                    usage[key] = value

    def _delta(self, index: int, change: dict[str, Any]) -> None:
        block = self.message["content"][index]
        kind = change["type"]
        if kind == "text_delta":
            block["text"] += change["text"]
        elif kind == "thinking_delta":
            block["thinking"] += change["thinking"]
        elif kind == "signature_delta":
            block["signature"] = change["signature"]
        elif kind == "citations_delta":
            block.setdefault("citations", [])
            if block["citations"] is None:
                block["citations"] = []
            block["citations"].append(change["citation"])
        elif kind == "input_json_delta":
            self._json[index] = self._json.get(index, "") + change["partial_json"]
