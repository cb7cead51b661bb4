"""A complete chat or text completion as OpenAI's stream of chunks (Server-Sent Events), for routes
whose answer comes whole: the simulator and Messages backends translated (anthropic).

A chat completion becomes `chat.completion.chunk` events in OpenAI's order: the role's delta, the
reasoning (`reasoning_content`) and the content word by word, a refusal, each tool call (its id,
name and arguments in one delta), then a chunk with the `finish_reason`, the usage chunk (empty
`choices`) when `stream_options.include_usage` asks for it, and `data: [DONE]`. A text completion
streams its text likewise, choice after choice. Only the timing is not the model's: every event
is built from the answer once it is complete. An OpenAI-compatible upstream that answers a
streamed request whole (it does not stream) is sent on the same way, missing fields filled in.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"
_PIECES = re.compile(r"\s*\S+\s*|\s+")  # a word with the spaces around it


def event(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def pieces(text: str) -> list[str]:
    """`text` cut into words, spaces kept (''.join gives it back)."""
    return _PIECES.findall(text) or [text]


def chat(completion: dict[str, Any], *, include_usage: bool) -> Iterator[bytes]:
    """The chunks of chat completion `completion`."""
    head = {
        "id": completion.get("id") or "chatcmpl-stream",
        "object": "chat.completion.chunk",
        "created": completion.get("created") or int(time.time()),
        "model": completion.get("model"),
        "service_tier": completion.get("service_tier"),
        "system_fingerprint": completion.get("system_fingerprint"),
    }
    if include_usage:
        head["usage"] = None

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return event({**head, "choices": [choice]})

    for choice in completion.get("choices") or ():
        i, message = choice.get("index", 0), choice.get("message") or {}
        if message.get("refusal"):  # as OpenAI opens a refusal's stream
            yield chunk(i, {"role": "assistant", "content": None, "refusal": ""})
        else:
            yield chunk(i, {"role": "assistant", "content": "", "refusal": None})
        if message.get("reasoning_content"):
            for piece in pieces(message["reasoning_content"]):
                yield chunk(i, {"reasoning_content": piece})
        if message.get("content"):
            for piece in pieces(message["content"]):
                yield chunk(i, {"content": piece})
        if message.get("refusal"):
            yield chunk(i, {"refusal": message["refusal"]})
        for n, call in enumerate(message.get("tool_calls") or ()):
            yield chunk(i, {"tool_calls": [{"index": n, **call}]})
        yield chunk(i, {}, choice.get("finish_reason") or "stop")
    if include_usage:
        yield event({**head, "choices": [], "usage": completion.get("usage")})
    yield DONE


def text(completion: dict[str, Any], *, include_usage: bool) -> Iterator[bytes]:
    """The chunks of text completion `completion`."""
    head = {
        "id": completion.get("id") or "cmpl-stream",
        "object": "text_completion",
        "created": completion.get("created") or int(time.time()),
        "model": completion.get("model"),
        "system_fingerprint": completion.get("system_fingerprint"),
    }
    if include_usage:
        head["usage"] = None
    for choice in completion.get("choices") or ():
        i, text = choice.get("index", 0), choice.get("text") or ""
        for piece in pieces(text) if text else ():
            yield event(
                {**head, "choices": [{"index": i, "text": piece, "logprobs": None, "finish_reason": None}]}
            )
        finish = {
            "index": i,
            "text": "",
            "logprobs": None,
            "finish_reason": choice.get("finish_reason") or "stop",
        }
        yield event({**head, "choices": [finish]})
    if include_usage:
        yield event({**head, "choices": [], "usage": completion.get("usage")})
    yield DONE
