"""Anthropic Message -> OpenAI `chat.completion` / `text_completion` (the inverse of
backends/openai/response.py).

- `text` blocks -> `message.content` (joined); `thinking` blocks -> `message.reasoning_content`
  (the field vLLM, SGLang and llama.cpp use); `tool_use` blocks -> `message.tool_calls`
- `stop_reason` -> `finish_reason`: end_turn / stop_sequence / pause_turn -> `stop`, max_tokens and
  model_context_window_exceeded -> `length`, tool_use -> `tool_calls`, refusal -> `content_filter`
  (the text then goes to `message.refusal`)
- `usage` -> `usage`: prompt_tokens = input + cache read + cache creation tokens,
  `prompt_tokens_details.cached_tokens` = cache read tokens
"""

from __future__ import annotations

import time
from typing import Any

import orjson

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def usage(message: dict[str, Any], reasoning_tokens: int = 0) -> dict[str, Any]:
    raw = message.get("usage") or {}
    cached = int(raw.get("cache_read_input_tokens") or 0)
    prompt = int(raw.get("input_tokens") or 0) + cached + int(raw.get("cache_creation_input_tokens") or 0)
    completion = int(raw.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": min(reasoning_tokens, completion),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _suffix(message: dict[str, Any]) -> str:
    msg_id = str(message.get("id") or "")
    return msg_id.removeprefix("msg_") or str(int(time.time() * 1000))


def to_chat_completion(message: dict[str, Any], *, model: str, reasoning_tokens: int = 0) -> dict[str, Any]:
    """The chat completion answering as `model` for Messages `message`; `reasoning_tokens`: those of
    its thinking, when the backend knows them (a Message's usage does not say)."""
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "thinking":
            reasoning.append(block.get("thinking", ""))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": orjson.dumps(block["input"]).decode()},
                }
            )
    stop_reason = message.get("stop_reason") or "end_turn"
    text = "".join(texts)
    out: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None, "annotations": []}
    if stop_reason == "refusal":
        out["content"], out["refusal"] = None, text
    if reasoning:
        out["reasoning_content"] = "\n\n".join(reasoning)
    if calls:
        out["tool_calls"] = calls
    return {
        "id": "chatcmpl-" + _suffix(message),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": out,
                "logprobs": None,
                "finish_reason": FINISH_REASONS.get(stop_reason, "stop"),
            }
        ],
        "usage": usage(message, reasoning_tokens),
        "service_tier": "default",
        "system_fingerprint": None,
    }


def to_text_completion(messages: list[dict[str, Any]], *, model: str) -> dict[str, Any]:
    """The text completion answering as `model`, one choice per Message (one per prompt)."""
    choices = []
    total = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for i, message in enumerate(messages):
        text = "".join(b.get("text", "") for b in message.get("content") or () if b.get("type") == "text")
        reason = FINISH_REASONS.get(message.get("stop_reason") or "end_turn", "stop")
        choices.append({"text": text, "index": i, "logprobs": None, "finish_reason": reason})
        counted = usage(message)
        for key in total:
            total[key] += counted[key]
    return {
        "id": "cmpl-" + (_suffix(messages[0]) if messages else str(int(time.time() * 1000))),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": total,
        "system_fingerprint": None,
    }
