"""OpenAI `/v1/chat/completions` request -> Anthropic Messages params (the inverse of
backends/openai/request.py).

Everything with an equivalent is translated; anything without one raises `InvalidLine` naming the
field (the line's error is a 400 `invalid_request_error` with that `param`), so nothing that changes
the answer is silently dropped. Left out, as hints with no effect on the answer or as OpenAI's own
service options: `stream` / `stream_options` (a batch line never streams), `store`, `metadata`,
`service_tier`, `seed` (best effort on OpenAI too), `prompt_cache_key`, `safety_identifier`,
`user` (kept, as `metadata.user_id`), a message's `name`, an assistant message's
`reasoning_content` (unsigned reasoning that no Anthropic model may be given back), and any other
field at its default (`null`, `false`, `0`, empty).
"""

from __future__ import annotations

from typing import Any

import orjson

from batchd.exceptions import InvalidLine

#: Without `max_tokens` / `max_completion_tokens` (optional on OpenAI, required by Messages).
DEFAULT_MAX_TOKENS = 4096
#: reasoning_effort -> thinking.budget_tokens (at most max_tokens - 1; Messages' minimum is 1,024).
BUDGETS = {"low": 1024, "medium": 4096, "high": 16384, "xhigh": 32768}
MIN_BUDGET = 1024
IGNORED = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "store",
        "metadata",
        "service_tier",
        "seed",
        "prompt_cache_key",
        "safety_identifier",
        "user",
    }
)
TOOL_CHOICES = {"auto": "auto", "required": "any", "none": "none"}
STOP_LIMIT = 4  # OpenAI's most stop strings


def bad(param: str, what: str) -> InvalidLine:
    return InvalidLine(f"{param}: {what}", param=param)


def untranslatable(param: str, what: str) -> InvalidLine:
    return bad(param, f"{what} has no equivalent on an Anthropic Messages backend")


def to_params(body: dict[str, Any], *, model: str) -> dict[str, Any]:
    """The Messages params for chat-completions `body`, asking for `model`."""
    handled = {"max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "stop", "n"}
    handled |= {"tools", "tool_choice", "parallel_tool_calls", "response_format", "reasoning_effort"}
    for key, value in body.items():
        if key in IGNORED or key in handled:
            continue
        if value in (None, False, 0, {}, []) or (key == "modalities" and value == ["text"]):
            continue  # a field at its default changes nothing
        raise untranslatable(key, f"`{key}`")
    system, messages = _messages(body.get("messages"))
    params: dict[str, Any] = {"model": model, "max_tokens": _max_tokens(body), "messages": messages}
    if system:
        params["system"] = system
    for key in ("temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            params[key] = body[key]
    if isinstance(params.get("temperature"), int | float) and params["temperature"] > 1:
        raise untranslatable("temperature", "a temperature above 1")
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise bad("stop", "must be a string or a list of strings")
        if len(stops) > STOP_LIMIT:
            raise bad("stop", f"at most {STOP_LIMIT} stop strings")
        if stops:
            params["stop_sequences"] = stops
    n = body.get("n")
    if n is not None and n != 1:
        raise untranslatable("n", "more than one choice (n > 1)")
    user = body.get("user")
    if isinstance(user, str) and user:
        params["metadata"] = {"user_id": user}
    _tools(body, params)
    _response_format(body, params)
    _reasoning(body, params)
    return params


def _max_tokens(body: dict[str, Any]) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is not None:
            if type(value) is not int or value < 1:
                raise bad(key, "must be a positive integer")
            return value
    return DEFAULT_MAX_TOKENS


# -- messages ---------------------------------------------------------------------------------


def _messages(raw: Any) -> tuple[str, list[dict[str, Any]]]:
    if not isinstance(raw, list) or not raw:
        raise bad("messages", "must be a non-empty list of messages")
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad(where, "must be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            if out:
                raise untranslatable(where, "a system message after the conversation has begun")
            system.append(_text_only(message.get("content"), f"{where}.content"))
        elif role == "user":
            _append(out, "user", _user_content(message.get("content"), f"{where}.content"))
        elif role == "assistant":
            _append(out, "assistant", _assistant(message, where))
        elif role == "tool":
            _append(out, "user", [_tool_result(message, where)])
        else:
            raise untranslatable(f"{where}.role", f"the role {role!r}")
    if not out:
        raise bad("messages", "must hold a user message besides system messages")
    return "\n\n".join(system), out


def _append(out: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Consecutive messages of one role become one (Messages alternates user and assistant)."""
    if out and out[-1]["role"] == role:
        out[-1]["content"].extend(blocks)
    else:
        out.append({"role": role, "content": blocks})


def _text_only(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad(where, "must be a string or a list of content parts")
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            kind = part.get("type") if isinstance(part, dict) else None
            raise untranslatable(f"{where}[{j}]", f"a {kind!r} part here")
        texts.append(part["text"])
    return "\n\n".join(texts)


def _user_content(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise bad(where, "must be a string or a list of content parts")
    blocks = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image(part.get("image_url"), f"{where}[{j}].image_url"))
        else:
            raise untranslatable(f"{where}[{j}]", f"a {kind!r} content part")
    return blocks


def _image(image: Any, where: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else None
    if not isinstance(url, str):
        raise bad(f"{where}.url", "must be a string")
    if url.startswith("data:"):
        head, sep, data = url[5:].partition(",")
        media_type, _, encoding = head.partition(";")
        if not sep or encoding != "base64":
            raise untranslatable(f"{where}.url", "a data URL that is not base64")
        source: dict[str, Any] = {"type": "base64", "media_type": media_type, "data": data}
    elif url.startswith(("http://", "https://")):
        source = {"type": "url", "url": url}
    else:
        raise bad(f"{where}.url", "must be an http(s) or data URL")
    return {"type": "image", "source": source}


def _assistant(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    content = message.get("content")
    if content is not None:
        text = _assistant_text(content, f"{where}.content")
        if text:
            blocks.append({"type": "text", "text": text})
    if message.get("function_call") is not None:
        raise untranslatable(f"{where}.function_call", "a legacy function_call (use tool_calls)")
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise bad(f"{where}.tool_calls", "must be a list")
    for k, call in enumerate(calls):
        blocks.append(_tool_use(call, f"{where}.tool_calls[{k}]"))
    if not blocks:
        raise bad(where, "an assistant message needs content or tool_calls")
    return blocks


def _assistant_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad(where, "must be a string or a list of content parts")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("text", "")))
        elif kind == "refusal":
            texts.append(str(part.get("refusal", "")))
        else:
            raise untranslatable(f"{where}[{j}]", f"a {kind!r} part in an assistant message")
    return "".join(texts)


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if (
        not isinstance(call, dict)
        or call.get("type", "function") != "function"
        or not isinstance(function, dict)
    ):
        raise untranslatable(where, "a tool call that is not a function call")
    name, arguments, call_id = function.get("name"), function.get("arguments") or "{}", call.get("id")
    if not isinstance(name, str) or not name or not isinstance(call_id, str) or not call_id:
        raise bad(where, "needs an id and a function name")
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) else arguments
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise bad(f"{where}.function.arguments", "must be a JSON object")
    return {"type": "tool_use", "id": call_id, "name": name, "input": parsed}


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise bad(f"{where}.tool_call_id", "must be a non-empty string")
    text = _text_only(message.get("content", ""), f"{where}.content")
    return {"type": "tool_result", "tool_use_id": call_id, "content": text}


# -- tools, structured output, reasoning --------------------------------------------------------


def _tools(body: dict[str, Any], params: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise bad("tools", "must be a list")
        out = []
        for i, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict):
                kind = tool.get("type") if isinstance(tool, dict) else None
                raise untranslatable(f"tools[{i}]", f"a tool of type {kind!r}")
            converted: dict[str, Any] = {
                "name": function.get("name"),
                "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
            }
            if function.get("description"):
                converted["description"] = function["description"]
            if function.get("strict") is not None:
                converted["strict"] = function["strict"]
            out.append(converted)
        if out:
            params["tools"] = out
    choice = body.get("tool_choice")
    converted_choice: dict[str, Any] | None = None
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise bad("tool_choice", f"unknown value {choice!r}")
        converted_choice = {"type": TOOL_CHOICES[choice]}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
        if not isinstance(name, str):
            raise untranslatable("tool_choice", "a tool_choice other than a function's")
        converted_choice = {"type": "tool", "name": name}
    elif choice is not None:
        raise bad("tool_choice", "must be a string or an object")
    if body.get("parallel_tool_calls") is False and params.get("tools"):
        converted_choice = converted_choice or {"type": "auto"}
        if converted_choice["type"] != "none":
            converted_choice["disable_parallel_tool_use"] = True
    if converted_choice is not None and params.get("tools"):  # without tools a choice changes nothing
        params["tool_choice"] = converted_choice


def _response_format(body: dict[str, Any], params: dict[str, Any]) -> None:
    fmt = body.get("response_format")
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return
    if kind != "json_schema":
        raise untranslatable("response_format", f"a response_format of type {kind!r} (only json_schema)")
    schema = (fmt.get("json_schema") or {}).get("schema")
    if not isinstance(schema, dict):
        raise bad("response_format.json_schema.schema", "must be a JSON schema object")
    params["output_config"] = {"format": {"type": "json_schema", "schema": schema}}


def _reasoning(body: dict[str, Any], params: dict[str, Any]) -> None:
    effort = body.get("reasoning_effort")
    if effort is None or effort in ("none", "minimal"):
        return
    if effort not in BUDGETS:
        raise bad("reasoning_effort", f"unknown value {effort!r}")
    budget = min(BUDGETS[effort], params["max_tokens"] - 1)
    if budget < MIN_BUDGET:
        raise untranslatable(
            "reasoning_effort",
            f"reasoning with max_completion_tokens {params['max_tokens']} "
            f"(thinking needs more than {MIN_BUDGET})",
        )
    params["thinking"] = {"type": "enabled", "budget_tokens": budget}
