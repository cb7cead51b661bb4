"""The loop's small pieces that backend.py and stream.py share: ids, the blocks it writes, the
files a request uploads, the tool choice after the first call."""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterator, Sequence
from typing import Any

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def server_tool_id() -> str:
    """`srvtoolu_01` + 22 base62 characters, as Anthropic's ids."""
    return "srvtoolu_01" + "".join(secrets.choice(_BASE62) for _ in range(22))


def uploads_in(messages: Sequence[dict[str, Any]]) -> Iterator[str]:
    """The file ids of the `container_upload` blocks of the user messages."""
    for message in messages:
        content = message["content"]
        if message["role"] == "user" and type(content) is list:
            for block in content:
                if block.get("type") == "container_upload":
                    yield str(block.get("file_id"))


def uploaded(messages: list[dict[str, Any]], said: dict[str, str]) -> list[dict[str, Any]]:
    """`messages` with each container_upload block replaced by the text the model reads for it."""
    out = []
    for message in messages:
        content = message["content"]
        if message["role"] == "user" and type(content) is list:
            content = [
                {"type": "text", "text": said[str(b.get("file_id"))]}
                if b.get("type") == "container_upload"
                else b
                for b in content
            ]
        out.append({**message, "content": content})
    return out


def server_tool_use(call: dict[str, Any]) -> dict[str, Any]:
    return {"type": "server_tool_use", "id": call["id"], "name": call["name"], "input": call["input"]}


def relaxed(request: dict[str, Any], tools: dict[str, Any]) -> dict[str, Any]:
    """After the first call, a tool_choice forcing a server tool (or any tool) no longer forces:
    the model must be free to answer with the results."""
    choice = request.get("tool_choice") or {}
    if choice.get("type") == "any" or (choice.get("type") == "tool" and choice.get("name") in tools):
        relaxed: dict[str, Any] = {"type": "auto"}
        if choice.get("disable_parallel_tool_use"):
            relaxed["disable_parallel_tool_use"] = True
        return {**request, "tool_choice": relaxed}
    return request
