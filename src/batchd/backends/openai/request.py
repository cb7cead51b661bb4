"""Anthropic Messages request -> OpenAI `/v1/chat/completions` request.

Everything with an equivalent is translated; anything without one raises `Untranslatable`
(a final `invalid_request_error` naming the field), so nothing is silently dropped. Only hints
with no effect on the answer are left out: `cache_control`, `service_tier`, `speed`,
`inference_geo`, `billing_policy`, `diagnostics`, `fallback_credit_token`, and the opaque
`redacted_thinking` blocks of earlier turns (only Anthropic's models can read them).
"""

from __future__ import annotations

from typing import Any

import orjson

from batchd import exceptions
from batchd.backends import pdf
from batchd.config.routes import ReasoningMode

#: Top-level params that only tune Anthropic's service; they change nothing in the answer.
IGNORED = frozenset(
    {
        "service_tier",
        "speed",
        "inference_geo",
        "billing_policy",
        "cache_control",
        "diagnostics",
        "fallback_credit_token",
        "stream",
    }
)
UNTRANSLATABLE = ("container", "mcp_servers", "context_management", "compaction", "thread", "fallbacks")
TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


class Untranslatable(exceptions.BackendError):
    """The request uses something the openai backend cannot express."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(
            f"{path}: {what} cannot be translated to an OpenAI-compatible chat completion",
            status=400,
            error_type="invalid_request_error",
            retryable=False,
        )


def effort_for(budget: int | None) -> str:
    """thinking.budget_tokens -> reasoning_effort."""
    if budget is None or budget >= 8192:
        return "high" if budget is not None else "medium"
    return "low" if budget < 2048 else "medium"


def to_chat(
    params: dict[str, Any],
    *,
    model: str,
    reasoning: ReasoningMode = ReasoningMode.CHAT_TEMPLATE_KWARGS,
) -> dict[str, Any]:
    """The chat-completions body for prepared Messages `params`, sent as `model` upstream."""
    for key in UNTRANSLATABLE:
        if key in params:
            raise Untranslatable(key, f"`{key}`")
    body: dict[str, Any] = {"model": model, "max_tokens": params["max_tokens"], "stream": False}
    messages: list[dict[str, Any]] = []
    system = params.get("system")
    if system is not None:
        messages.append({"role": "system", "content": _system_text(system)})
    for i, message in enumerate(params["messages"]):
        messages.extend(_message(message, f"messages.{i}"))
    body["messages"] = messages
    for key in ("temperature", "top_p", "top_k"):
        if params.get(key) is not None:
            body[key] = params[key]
    if params.get("stop_sequences"):
        body["stop"] = list(params["stop_sequences"])
    user_id = (params.get("metadata") or {}).get("user_id")
    if user_id:
        body["user"] = user_id
    _tools(params, body)
    _thinking(params, body, reasoning)
    _response_format(params, body)
    return body


# -- content ---------------------------------------------------------------------------


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    parts = []
    for j, block in enumerate(system):
        if block.get("type") != "text":
            raise Untranslatable(f"system.{j}", f"a {block.get('type')!r} system block")
        parts.append(block["text"])
    return "\n\n".join(parts)


def _message(message: dict[str, Any], path: str) -> list[dict[str, Any]]:
    role = message["role"]
    content = message["content"]
    if role == "system":  # a mid-conversation system message, as params_blocks allows
        return [{"role": "system", "content": _system_text(content)}]
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if role == "assistant":
        return [_assistant(content, path)]
    return _user(content, path)


def _user(blocks: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        where = f"{path}.content.{j}"
        kind = block.get("type")
        if kind == "tool_result":
            tool_messages.append(_tool_result(block, where))
        else:
            parts.extend(_part(block, where))
    out = list(tool_messages)  # tool answers must directly follow the assistant's tool calls
    if parts:
        if all(p["type"] == "text" for p in parts):
            out.append({"role": "user", "content": "\n\n".join(p["text"] for p in parts)})
        else:
            out.append({"role": "user", "content": parts})
    return out


def _part(block: dict[str, Any], where: str) -> list[dict[str, Any]]:
    kind = block.get("type")
    if kind == "text":
        if block.get("citations"):
            raise Untranslatable(f"{where}.citations", "citations on a text block")
        return [{"type": "text", "text": block["text"]}]
    if kind == "image":
        return [_image(block["source"], where)]
    if kind == "document":
        return _document(block, where)
    raise Untranslatable(where, f"a {kind!r} block")


def _image(source: dict[str, Any], where: str) -> dict[str, Any]:
    kind = source.get("type")
    if kind == "base64":
        url = f"data:{source['media_type']};base64,{source['data']}"
    elif kind == "url":
        url = source["url"]
    else:
        raise Untranslatable(f"{where}.source", f"an image source of type {kind!r}")
    return {"type": "image_url", "image_url": {"url": url}}


def _document(block: dict[str, Any], where: str) -> list[dict[str, Any]]:
    if (block.get("citations") or {}).get("enabled"):
        raise Untranslatable(f"{where}.citations", "citations (a document with citations.enabled)")
    source = block["source"]
    kind = source.get("type")
    header = "".join(
        f"{label}: {block[key]}\n"
        for key, label in (("title", "Title"), ("context", "Context"))
        if block.get(key)
    )
    if kind == "text":
        return [{"type": "text", "text": header + source["data"]}]
    if kind == "base64" and source.get("media_type") == "application/pdf":
        pages = pdf.extract_pages(source["data"])
        return [{"type": "text", "text": header + "\n\n".join(pages)}]
    if kind == "content":
        inner = source["content"]
        if isinstance(inner, str):
            return [{"type": "text", "text": header + inner}]
        parts: list[dict[str, Any]] = [{"type": "text", "text": header}] if header else []
        for k, sub in enumerate(inner):
            parts.extend(_part(sub, f"{where}.source.content.{k}"))
        return parts
    raise Untranslatable(f"{where}.source", f"a document source of type {kind!r}")


def _tool_result(block: dict[str, Any], where: str) -> dict[str, Any]:
    content = block.get("content", "")
    if isinstance(content, str):
        text = content
    else:
        texts = []
        for k, sub in enumerate(content):
            if sub.get("type") != "text":
                raise Untranslatable(
                    f"{where}.content.{k}", f"a {sub.get('type')!r} block inside a tool_result"
                )
            texts.append(sub["text"])
        text = "\n\n".join(texts)
    if block.get("is_error"):
        text = "Error: " + text
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}


def _assistant(blocks: list[dict[str, Any]], path: str) -> dict[str, Any]:
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "text":
            texts.append(block["text"])
        elif kind == "thinking":
            reasoning.append(block["thinking"])
        elif kind == "redacted_thinking":
            continue  # encrypted for Anthropic's models; no other model can read it
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": orjson.dumps(block["input"]).decode()},
                }
            )
        else:
            raise Untranslatable(f"{path}.content.{j}", f"a {kind!r} block")
    out: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if reasoning:
        out["reasoning_content"] = "\n\n".join(reasoning)
    if calls:
        out["tool_calls"] = calls
    if out["content"] is None and not calls:
        out["content"] = ""
    return out


# -- tools, thinking, structured output -----------------------------------------------------


def _tools(params: dict[str, Any], body: dict[str, Any]) -> None:
    tools = params.get("tools")
    if tools:
        functions = []
        for i, tool in enumerate(tools):
            kind = tool.get("type")
            if kind not in (None, "custom"):
                raise Untranslatable(f"tools.{i}", f"the server tool {kind!r}")
            function: dict[str, Any] = {"name": tool["name"], "parameters": tool["input_schema"]}
            if tool.get("description"):
                function["description"] = tool["description"]
            if tool.get("strict") is not None:
                function["strict"] = tool["strict"]
            functions.append({"type": "function", "function": function})
        body["tools"] = functions
    choice = params.get("tool_choice")
    if choice is None:
        return
    kind = choice["type"]
    if kind == "tool":
        body["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        body["tool_choice"] = TOOL_CHOICES[kind]
    if choice.get("disable_parallel_tool_use") and tools:
        body["parallel_tool_calls"] = False


def _thinking(params: dict[str, Any], body: dict[str, Any], reasoning: ReasoningMode) -> None:
    thinking = params.get("thinking") or {}
    on = thinking.get("type") in ("enabled", "adaptive")
    effort = (params.get("output_config") or {}).get("effort")
    if reasoning.sends_template_kwargs:
        body["chat_template_kwargs"] = {"enable_thinking": on}
    if on and reasoning.sends_effort:
        body["reasoning_effort"] = effort or effort_for(thinking.get("budget_tokens"))


def _response_format(params: dict[str, Any], body: dict[str, Any]) -> None:
    fmt = params.get("output_format")
    where = "output_format"
    config = params.get("output_config") or {}
    if fmt is None and "format" in config:
        fmt, where = config["format"], "output_config.format"
    for key in config:
        if key not in ("format", "effort"):
            raise Untranslatable(f"output_config.{key}", f"`output_config.{key}`")
    if fmt is None:
        return
    if (
        not isinstance(fmt, dict)
        or fmt.get("type") != "json_schema"
        or not isinstance(fmt.get("schema"), dict)
    ):
        raise Untranslatable(where, "a format other than {type: json_schema, schema: {...}}")
    body["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": fmt.get("name") or "output", "schema": fmt["schema"], "strict": True},
    }
