"""A loopback coding model: OpenAI `/v1/chat/completions` and Anthropic `/v1/messages`.

The user's last text message is its script: each line `CALL <function> <json input>` is one tool
call it makes, in order, one per turn (the number of tool results after that message says which is
next); once every call has its result it answers `Done. <the last result>`, so a test can read what
the model was shown. Every request body is kept in `bodies`.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.acceptance.server import ThreadedApp


def script(*calls: tuple[str, dict[str, Any]]) -> str:
    """The user text that makes the model make `calls` in order."""
    return "\n".join(f"CALL {name} {json.dumps(tool_input)}" for name, tool_input in calls)


def _calls(text: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for line in text.splitlines():
        if line.startswith("CALL "):
            name, _, raw = line[5:].partition(" ")
            found.append((name, json.loads(raw)))
    return found


class CodeUpstream:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/messages", self.messages, methods=["POST"]),
            ]
        )
        self.app = ThreadedApp(app)
        self.url = self.app.url

    def start(self) -> CodeUpstream:
        self.app.serve()
        return self

    def stop(self) -> None:
        self.app.stop()

    async def chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.bodies.append(body)
        messages = body["messages"]
        last_text = max(i for i, m in enumerate(messages) if m["role"] == "user" and m.get("content"))
        results = [str(m["content"]) for m in messages[last_text:] if m["role"] == "tool"]
        calls = _calls(_text(messages[last_text]["content"]))
        n = next(self._ids)
        if len(results) < len(calls):
            name, tool_input = calls[len(results)]
            call = {"id": f"call_{n}", "type": "function",
                    "function": {"name": name, "arguments": json.dumps(tool_input)}}  # fmt: skip
            message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
            finish = "tool_calls"
        else:
            message, finish = {"role": "assistant", "content": _done(results)}, "stop"
        return JSONResponse(
            {"id": f"chatcmpl-{n}", "object": "chat.completion", "model": body["model"],
             "choices": [{"index": 0, "message": message, "finish_reason": finish}],
             "usage": {"prompt_tokens": 30, "completion_tokens": 5}}
        )  # fmt: skip

    async def messages(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.bodies.append(body)
        messages = body["messages"]
        texts = [i for i, m in enumerate(messages) if m["role"] == "user" and _plain(m["content"])]
        last_text = max(texts)
        later = [m["content"] for m in messages[last_text:] if m["role"] == "user"]
        results = [
            _text(b["content"]) for content in later if isinstance(content, list)
            for b in content if b.get("type") == "tool_result"
        ]  # fmt: skip
        calls = _calls(_plain(messages[last_text]["content"]))
        n = next(self._ids)
        if len(results) < len(calls):
            name, tool_input = calls[len(results)]
            content = [{"type": "tool_use", "id": f"toolu_{n}", "name": name, "input": tool_input}]
            stop = "tool_use"
        else:
            content, stop = [{"type": "text", "text": _done(results)}], "end_turn"
        return JSONResponse(
            {"id": f"msg_up{n}", "type": "message", "role": "assistant", "model": body["model"],
             "content": content, "stop_reason": stop, "stop_sequence": None,
             "usage": {"input_tokens": 30, "output_tokens": 5}}
        )  # fmt: skip


def _done(results: list[str]) -> str:
    return f"Done. {results[-1]}" if results else "Done."


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if isinstance(b, dict))


def _plain(content: Any) -> str:
    """The text of a user message that is not only tool results ("" for one that is)."""
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content if b.get("type") == "text")
