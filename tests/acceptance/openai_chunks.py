"""A complete chat completion as the chunks an OpenAI-compatible server streams for it
(`stream: true` with `stream_options.include_usage`), for the loopback upstreams of the tests."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any


def pieces(text: str) -> list[str]:
    """`text` in word-sized pieces, as tokens come (spaces kept)."""
    return re.findall(r"\s*\S+|\s+", text) or [text]


def chunks(completion: dict[str, Any], *, size: int = 7) -> Iterator[dict[str, Any]]:
    """The chunk objects of `completion`: the role, reasoning, text and refusal piece by piece, each tool
    call's arguments `size` characters at a time, the finish, then the usage (no choices)."""
    base = {"id": completion["id"], "object": "chat.completion.chunk", "model": completion.get("model", "")}
    choice = completion["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    for piece in pieces(message.get("reasoning_content") or ""):
        if piece:
            yield chunk({"reasoning_content": piece})
    for piece in pieces(message.get("content") or ""):
        if piece:
            yield chunk({"content": piece})
    for piece in pieces(message.get("refusal") or ""):
        if piece:
            yield chunk({"refusal": piece})
    for i, call in enumerate(message.get("tool_calls") or ()):
        name = call["function"]["name"]
        head = {"index": i, "id": call["id"], "type": "function", "function": {"name": name}}
        yield chunk({"tool_calls": [head]})
        arguments = call["function"]["arguments"]
        for at in range(0, len(arguments), size):
            part = {"index": i, "function": {"arguments": arguments[at : at + size]}}
            yield chunk({"tool_calls": [part]})
    extra = {k: v for k, v in choice.items() if k not in ("index", "message", "finish_reason")}
    last = chunk({}, choice.get("finish_reason") or "stop")
    last["choices"][0].update(extra)
    yield last
    if completion.get("usage") is not None:
        yield {**base, "choices": [], "usage": completion["usage"]}


def encoded(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"
