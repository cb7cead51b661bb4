"""A deterministic loopback model server for the SDK-fidelity tests: the same body always gets the
same answer, id included, so a streamed call and a plain one can be compared field for field.

- `POST /v1/chat/completions` (OpenAI-compatible; with `stream: true` the same completion as
  chunks, tests/acceptance/openai_chunks.py): with a `response_format` json_schema it answers
  STRUCTURED; with a `web_search` function and no tool result yet it calls it; after a tool result
  it quotes it; `call=NAME` in the user's text calls client tool NAME with CITY; `think` adds
  `reasoning_content`. Usage: `prompt_tokens` from the body's size (prompt_tokens_for),
  CACHED of them cached.
- `GET /v1/models`: MODELS, OpenAI's list shape.
- `POST /v1/messages/count_tokens` (Anthropic-compatible): `{"input_tokens": COUNT}`.
- `GET /search` and `/healthz`: a SearXNG instance with one result, for batchd's web search.

Every request body is kept in `bodies` as (path, body).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.acceptance import openai_chunks
from tests.acceptance.server import ThreadedApp
from tests.acceptance.tool_upstream import answer_for

STRUCTURED = {"city": "Paris", "forecast": [{"day": "mon", "celsius": 21}], "unit": "C"}
CITY = {"city": "Paris"}
MODELS = ("fid-alpha", "fid-beta", "other-model")
COUNT = 4321
CACHED = 4
SEARCH_RESULT = {
    "url": "https://science.example/shannon",
    "title": "Claude Shannon",
    "content": "Claude Shannon was born on April 30, 1916, in Petoskey, Michigan.",
}
_CALL = re.compile(r"call=(\w+)")


def prompt_tokens_for(body: dict[str, Any]) -> int:
    """The upstream's prompt size for a chat body: one token per 8 bytes of its messages and tools."""
    return 10 + len(json.dumps([body["messages"], body.get("tools")], sort_keys=True)) // 8


class FidelityUpstream:
    def __init__(self) -> None:
        self.bodies: list[tuple[str, dict[str, Any]]] = []
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/v1/messages/count_tokens", self.count_tokens, methods=["POST"]),
                Route("/search", self.search, methods=["GET"]),
                Route("/healthz", self.healthz, methods=["GET"]),
            ]
        )
        self.app = ThreadedApp(app)
        self.url = self.app.url

    def start(self) -> FidelityUpstream:
        self.app.serve()
        return self

    def stop(self) -> None:
        self.app.stop()

    def received(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body in self.bodies if p == path]

    async def chat(self, request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        self.bodies.append(("/v1/chat/completions", body))
        messages = body["messages"]
        user = next(m for m in reversed(messages) if m["role"] == "user")
        text = user["content"] if isinstance(user["content"], str) else json.dumps(user["content"])
        results = [m["content"] for m in messages if m["role"] == "tool"]
        tools = {t["function"]["name"] for t in body.get("tools") or ()}
        called = _CALL.search(text)
        message: dict[str, Any] = {"role": "assistant", "content": None}
        finish = "stop"
        if body.get("response_format", {}).get("type") == "json_schema":
            message["content"] = json.dumps(STRUCTURED)
        elif "web_search" in tools and not results:
            arguments = json.dumps({"query": "claude shannon born"})
            message["tool_calls"] = [_call("call_s1", "web_search", arguments)]
            finish = "tool_calls"
        elif results:
            message["content"] = answer_for(results[-1])
        elif called and called.group(1) in tools:
            message["tool_calls"] = [_call("call_c1", called.group(1), json.dumps(CITY))]
            finish = "tool_calls"
        else:
            message["content"] = f"echo: {text}"
        if "think" in text:
            message["reasoning_content"] = "Thinking it over."
        prompt = prompt_tokens_for(body)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": 1 if body.get("max_tokens") == 1 else 9,
            "prompt_tokens_details": {"cached_tokens": CACHED},
        }
        asked = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        digest = hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()[:16]
        choice = {"index": 0, "message": message, "finish_reason": finish}
        completion = {"id": f"chatcmpl-{digest}", "object": "chat.completion", "model": body["model"],
                      "choices": [choice], "usage": usage}  # fmt: skip
        if body.get("stream"):  # the same completion, chunk by chunk
            events = [openai_chunks.encoded(c) for c in openai_chunks.chunks(completion)]
            return StreamingResponse(iter([*events, openai_chunks.DONE]), media_type="text/event-stream")
        return JSONResponse(completion)

    async def models(self, request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": m, "object": "model"} for m in MODELS]})

    async def count_tokens(self, request: Request) -> JSONResponse:
        self.bodies.append(("/v1/messages/count_tokens", await request.json()))
        return JSONResponse({"input_tokens": COUNT})

    async def search(self, request: Request) -> JSONResponse:
        page = request.query_params.get("pageno", "1")
        return JSONResponse(
            {"query": request.query_params.get("q"), "results": [SEARCH_RESULT] if page == "1" else []}
        )

    async def healthz(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse("OK")


def _call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
