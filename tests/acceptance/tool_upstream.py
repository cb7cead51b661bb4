"""A loopback model server that calls tools: OpenAI `/v1/chat/completions` and Anthropic `/v1/messages`.

It behaves like a small search-and-answer model: while the conversation has no tool result it
calls `web_search` with the user's last words as the query; once it has one, it answers quoting
the last result's first sentence of page text. A user text containing "always search" makes it
call the tool whatever it has seen (for pause_turn); `latency` delays every answer (for the
benchmark's realistic upstream). Every request body is kept in `bodies`.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.acceptance.server import ThreadedApp

PAGE_TEXT = re.compile(r"URL: \S+\n(?:Published: [^\n]*\n)?\n(?P<text>[^\n<]+)")


def answer_for(result: str) -> str:
    """The answer quoting a tool result: the first sentence of the first page it shows."""
    match = PAGE_TEXT.search(result)
    quoted = (match.group("text") if match else result).split(". ")[0].strip().rstrip(".")
    return f"According to the search, {quoted}."


class ToolUpstream:
    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.bodies: list[dict[str, Any]] = []
        self.calls = 0
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/messages", self.messages, methods=["POST"]),
            ]
        )
        self.app = ThreadedApp(app)
        self.port, self.url = self.app.port, self.app.url

    def start(self) -> ToolUpstream:
        self.app.serve()
        return self

    def stop(self) -> None:
        self.app.stop()

    async def _received(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = await request.json()
        self.bodies.append(body)
        self.calls += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        return body

    async def chat(self, request: Request) -> JSONResponse:
        body = await self._received(request)
        messages = body["messages"]
        user = next(m for m in reversed(messages) if m["role"] == "user")
        question = user["content"] if isinstance(user["content"], str) else str(user["content"])
        results = [m["content"] for m in messages if m["role"] == "tool"]
        tools = {t["function"]["name"] for t in body.get("tools") or ()}
        first_user = next(m for m in messages if m["role"] == "user")
        always = "always search" in str(first_user["content"])
        message: dict[str, Any]
        if "web_search" in tools and (always or not results):
            arguments = f'{{"query": "{_query(question)}"}}'
            function = {"name": "web_search", "arguments": arguments}
            call = {"id": f"call_{self.calls}", "type": "function", "function": function}
            message, finish = {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
        else:
            text = answer_for(results[-1]) if results else f"echo: {question}"
            message, finish = {"role": "assistant", "content": text}, "stop"
        usage = {"prompt_tokens": 50, "completion_tokens": 7}
        return JSONResponse(
            {"id": f"chatcmpl-{self.calls}", "object": "chat.completion", "model": body["model"],
             "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}
        )  # fmt: skip

    async def messages(self, request: Request) -> JSONResponse:
        body = await self._received(request)
        messages = body["messages"]
        results = [
            b["content"] for m in messages if m["role"] == "user" and isinstance(m["content"], list)
            for b in m["content"] if b.get("type") == "tool_result"
        ]  # fmt: skip
        texts = [
            m["content"] if isinstance(m["content"], str) else "" for m in messages if m["role"] == "user"
        ]
        tools = {t["name"] for t in body.get("tools") or ()}
        always = "always search" in texts[0]
        if "web_search" in tools and (always or not results):
            content = [
                {"type": "text", "text": "Let me search."},
                {"type": "tool_use", "id": f"toolu_{self.calls}", "name": "web_search",
                 "input": {"query": _query(texts[-1] or texts[0])}},
            ]  # fmt: skip
            stop = "tool_use"
        else:
            text = answer_for(str(results[-1])) if results else f"echo: {texts[-1]}"
            content, stop = [{"type": "text", "text": text}], "end_turn"
        return JSONResponse(
            {"id": f"msg_up{self.calls}", "type": "message", "role": "assistant", "model": body["model"],
             "content": content, "stop_reason": stop, "stop_sequence": None,
             "usage": {"input_tokens": 40, "output_tokens": 9}}
        )  # fmt: skip


def _query(text: str) -> str:
    words = re.findall(r"\w+", text.replace("always search", ""))
    return " ".join(words[-6:]) or "news"
