"""A complete Message as Anthropic's stream of Server-Sent Events (`stream: true`).

The backends answer whole Messages, so the events are built from one: exact in content, not in
timing. They add up to that Message field for field, as the SDK's accumulator
(`client.messages.stream(...).get_final_message()`) rebuilds it:

- `message_start` holds the Message without content, stop fields or container, `output_tokens` 0;
- each block is `content_block_start` (empty text, thinking or input), its deltas (`text_delta`,
  `citations_delta` one per citation, `thinking_delta` + `signature_delta`, one
  `input_json_delta`), `content_block_stop`; other blocks arrive whole in their start event;
- `message_delta` carries `stop_reason`, `stop_sequence`, `stop_details`, `container`, and the
  cumulative usage `MessageDeltaUsage` has: input, output and cache tokens, `server_tool_use`,
  `output_tokens_details`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson

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


def sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps({"type": event, **data}) + b"\n\n"


async def events(message: dict[str, Any]) -> AsyncIterator[bytes]:
    """The events of `message`, encoded."""
    for name, data in event_data(message):
        yield sse(name, data)


def event_data(message: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The events of `message` as (event name, data without its `type`)."""
    usage = message.get("usage") or {}
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    for key in ("stop_details", "container"):
        if key in start:
            start[key] = None
    start["usage"] = {**usage, "output_tokens": 0}
    yield "message_start", {"message": start}
    for index, block in enumerate(message.get("content") or []):
        yield from _block(index, block)
        yield "content_block_stop", {"index": index}
    delta = {
        "stop_reason": message.get("stop_reason"),
        "stop_sequence": message.get("stop_sequence"),
        "stop_details": message.get("stop_details"),
        "container": message.get("container"),
    }
    delta_usage = {key: usage[key] for key in DELTA_USAGE if key in usage}
    delta_usage.setdefault("output_tokens", 0)
    yield "message_delta", {"delta": delta, "usage": delta_usage}
    yield "message_stop", {}


def _block(index: int, block: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    kind = block.get("type")
    if kind == "text":
        citations = block.get("citations")
        start = {**block, "text": ""}
        if citations:
            start["citations"] = []
        yield "content_block_start", {"index": index, "content_block": start}
        for citation in citations or ():
            yield "content_block_delta", _delta(index, "citations_delta", citation=citation)
        yield "content_block_delta", _delta(index, "text_delta", text=block["text"])
    elif kind == "thinking":
        empty = {**block, "thinking": "", "signature": ""}
        yield "content_block_start", {"index": index, "content_block": empty}
        yield "content_block_delta", _delta(index, "thinking_delta", thinking=block["thinking"])
        yield "content_block_delta", _delta(index, "signature_delta", signature=block.get("signature", ""))
    elif kind in _EMPTY_INPUT:
        yield "content_block_start", {"index": index, "content_block": {**block, "input": {}}}
        partial = orjson.dumps(block.get("input", {})).decode()
        yield "content_block_delta", _delta(index, "input_json_delta", partial_json=partial)
    else:
        yield "content_block_start", {"index": index, "content_block": block}


def _delta(index: int, kind: str, **fields: Any) -> dict[str, Any]:
    return {"index": index, "delta": {"type": kind, **fields}}
