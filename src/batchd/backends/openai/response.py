"""OpenAI chat completion -> Anthropic Message.

- `reasoning_content` / `reasoning` (or a leading `<think>…</think>` in the text) -> a `thinking` block
- `content` -> a `text` block; `refusal` -> a `text` block with `stop_reason: "refusal"`
- `tool_calls` -> `tool_use` blocks (arguments parsed; invalid JSON is a final error, never guessed)
- `finish_reason` -> `stop_reason`; a matched stop string (vLLM's `stop_reason`, llama.cpp's
  `stopping_word`) -> `stop_sequence`
- `usage` -> `usage`; cached prompt tokens (`prompt_tokens_details.cached_tokens`, or llama.cpp's
  `timings.cache_n`) -> `cache_read_input_tokens`, the rest -> `input_tokens`
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from batchd import exceptions

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_THINK = re.compile(r"^\s*<think>(.*?)</think>\s*", re.DOTALL)
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _id(prefix: str, seed: str) -> str:
    digest = int.from_bytes(hashlib.blake2b(seed.encode(), digest_size=18).digest(), "big")
    chars = []
    for _ in range(24):
        digest, rem = divmod(digest, 58)
        chars.append(_BASE58[rem])
    return prefix + "".join(chars)


def _bad(upstream: str, what: str) -> exceptions.BackendError:
    return exceptions.BackendError(f"{upstream} answered {what}", status=502, error_type="api_error")


def to_message(
    data: dict[str, Any], *, model: str, params: dict[str, Any], upstream: str = "openai upstream"
) -> dict[str, Any]:
    """The Anthropic Message for chat completion `data` answering `params` (as `model`)."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _bad(upstream, "a chat completion without choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise _bad(upstream, "a choice without a message")
    seed = str(data.get("id") or orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode())
    content: list[dict[str, Any]] = []

    text = message.get("content")
    if isinstance(text, list):  # some servers answer with content parts
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    text = text or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if not reasoning:
        match = _THINK.match(text)
        if match:
            reasoning, text = match.group(1).strip(), text[match.end() :]
    if isinstance(reasoning, str) and reasoning.strip():
        content.append({"type": "thinking", "thinking": reasoning.strip(), "signature": ""})

    refusal = message.get("refusal")
    if refusal:
        text = text or refusal
    if text:
        content.append({"type": "text", "text": text})

    for i, call in enumerate(message.get("tool_calls") or ()):
        content.append(_tool_use(call, i, seed, upstream))

    finish = choice.get("finish_reason")
    stop_reason = STOP_REASONS.get(finish or "stop", "end_turn")
    if refusal:
        stop_reason = "refusal"
    if message.get("tool_calls") and stop_reason == "end_turn":
        stop_reason = "tool_use"  # some servers say "stop" after a tool call
    stop_sequence = None
    if stop_reason == "end_turn":
        stop_sequence = _matched_stop(choice, params.get("stop_sequences") or ())
        if stop_sequence is not None:
            stop_reason = "stop_sequence"
    return {
        "id": _id("msg_", seed),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage(data),
    }


def _tool_use(call: Any, index: int, seed: str, upstream: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not function.get("name"):
        raise _bad(upstream, f"tool call {index} without a function name")
    arguments = function.get("arguments") or "{}"
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) else arguments
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise _bad(
            upstream, f"tool call {index} ({function['name']}) with arguments that are not a JSON object"
        )
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        call_id = _id("toolu_", f"{seed}/{index}")
    return {"type": "tool_use", "id": call_id, "name": function["name"], "input": parsed}


def _matched_stop(choice: dict[str, Any], stops: Any) -> str | None:
    for key in ("stop_reason", "stopping_word", "matched_stop"):  # vLLM, llama.cpp, SGLang
        value = choice.get(key)
        if isinstance(value, str) and value in stops:
            return value
    return None


def usage(data: dict[str, Any]) -> dict[str, Any]:
    raw = data.get("usage") or {}
    prompt = int(raw.get("prompt_tokens") or 0)
    details = raw.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens")
    if cached is None:
        cached = (data.get("timings") or {}).get("cache_n")
    cached = min(int(cached or 0), prompt)
    return {
        "input_tokens": prompt - cached,
        "output_tokens": int(raw.get("completion_tokens") or 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }
