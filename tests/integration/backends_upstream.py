"""A real loopback upstream speaking `/v1/messages` and `/v1/chat/completions`, with faults on demand.

Words in the last user message script the answer to that request (counted per distinct text, so
they work whatever order a batch runs in):

- `fail=STATUSxN`: answer the first N calls with HTTP STATUS (Anthropic or OpenAI error body)
- `retry_after=S` / `retry_after_ms=MS`: add that header to those failures
- `stall=SxN`: hold the first N calls S seconds before answering
- `call=NAME`: answer with a tool call to NAME
- `think`: include reasoning (`reasoning_content`) in chat completions
- `badjson`: answer a 200 whose body is not JSON (first call only)

`/v1/completions` and `/v1/embeddings` are scripted by their `prompt` / `input` text the same way.

Every request received is recorded (path, headers, JSON body) in `Upstream.calls`.

`Scripted` runs plain asyncio servers scripted per connection (keep-alive, closes, malformed
answers), for the HTTP client's own behaviour.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.acceptance.server import ThreadedApp

_FAIL = re.compile(r"fail=(\d{3})x(\d+)")
_STALL = re.compile(r"stall=([\d.]+)x(\d+)")
_RA = re.compile(r"retry_after=([\d.]+)")
_RAMS = re.compile(r"retry_after_ms=(\d+)")
_CALL = re.compile(r"call=(\w+)")
_ERROR_TYPES = {
    429: "rate_limit_error",
    529: "overloaded_error",
    500: "api_error",
    503: "api_error",
    400: "invalid_request_error",
    401: "authentication_error",
    408: "timeout_error",
}


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") in ("user", "tool"):
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
    return ""


class Upstream:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.seen: Counter[str] = Counter()
        self.arrivals: dict[str, list[float]] = {}  # monotonic arrival times per message text
        self.inflight = 0
        self.max_inflight = 0
        app = Starlette(
            routes=[
                Route("/v1/messages", self.messages, methods=["POST"]),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/completions", self.completions, methods=["POST"]),
                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
            ]
        )
        self.app = ThreadedApp(app)
        self.port, self.url = self.app.port, self.app.url

    def start(self) -> Upstream:
        self.app.serve()
        return self

    def stop(self) -> None:
        self.app.stop()

    async def _fault(self, text: str, openai: bool) -> Response | None:
        self.seen[text] += 1
        self.arrivals.setdefault(text, []).append(time.monotonic())
        n = self.seen[text]
        stall = _STALL.search(text)
        if stall and n <= int(stall.group(2)):
            await asyncio.sleep(float(stall.group(1)))
        fail = _FAIL.search(text)
        if fail and n <= int(fail.group(2)):
            status = int(fail.group(1))
            headers = {}
            if m := _RA.search(text):
                headers["retry-after"] = m.group(1)
            if m := _RAMS.search(text):
                headers["retry-after-ms"] = m.group(1)
            kind = _ERROR_TYPES.get(status, "api_error")
            message = f"injected {status} on call {n}"
            if openai:
                body = {
                    "error": {
                        "message": message,
                        "type": "server_error" if status >= 500 else kind,
                        "code": status,
                    }
                }
            else:
                body = {"type": "error", "error": {"type": kind, "message": message}}
            return Response(
                orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
            )
        if "badjson" in text and n == 1:
            return Response(b"<html>oops</html>", status_code=200, media_type="text/html")
        return None

    async def _record(self, request: Request) -> dict[str, Any]:
        body = orjson.loads(await request.body())
        self.calls.append((request.url.path, dict(request.headers), body))
        return body

    async def messages(self, request: Request) -> Response:
        body = await self._record(request)
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            text = _last_user_text(body["messages"])
            fault = await self._fault(text, openai=False)
            if fault is not None:
                return fault
            content: list[dict[str, Any]] = [{"type": "text", "text": f"echo: {text}"}]
            stop = "end_turn"
            if m := _CALL.search(text):
                content.append({"type": "tool_use", "id": "toolu_up1", "name": m.group(1), "input": {"q": 1}})
                stop = "tool_use"
            message = {
                "id": "msg_upstream1",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": content,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {"input_tokens": 7, "output_tokens": 3},
            }
            return Response(orjson.dumps(message), media_type="application/json")
        finally:
            self.inflight -= 1

    async def chat(self, request: Request) -> Response:
        body = await self._record(request)
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            text = _last_user_text(body["messages"])
            fault = await self._fault(text, openai=True)
            if fault is not None:
                return fault
            message: dict[str, Any] = {"role": "assistant", "content": f"echo: {text}"}
            finish = "stop"
            if "think" in text and (body.get("chat_template_kwargs") or {}).get("enable_thinking"):
                message["reasoning_content"] = "thinking about it"
            if m := _CALL.search(text):
                message["tool_calls"] = [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": m.group(1), "arguments": '{"q": 1}'},
                    }
                ]
                finish = "tool_calls"
            answer = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {
                    "prompt_tokens": 10,
                    "completion_tokens": 4,
                    "total_tokens": 14,
                    "prompt_tokens_details": {"cached_tokens": 6},
                },
            }
            return Response(orjson.dumps(answer), media_type="application/json")
        finally:
            self.inflight -= 1

    async def completions(self, request: Request) -> Response:
        body = await self._record(request)
        text = str(body.get("prompt"))
        fault = await self._fault(text, openai=True)
        if fault is not None:
            return fault
        answer = {
            "id": "cmpl-1",
            "object": "text_completion",
            "created": 1,
            "model": body["model"],
            "choices": [{"index": 0, "text": f"echo: {text}", "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
        return Response(orjson.dumps(answer), media_type="application/json")

    async def embeddings(self, request: Request) -> Response:
        body = await self._record(request)
        inputs = body["input"] if isinstance(body.get("input"), list) else [body.get("input")]
        fault = await self._fault(" ".join(map(str, inputs)), openai=True)
        if fault is not None:
            return fault
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(str(text))), 1.0]}
            for i, text in enumerate(inputs)
        ]
        answer = {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
        }
        return Response(orjson.dumps(answer), media_type="application/json")


# -- a loopback HTTP/1.1 server scripted per connection, for the client's wire behaviour ----------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request, head and body (Content-Length), as received."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def parse_request(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    """(request line, headers with lower-case names, body)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    line, *fields = head.decode().split("\r\n")
    headers = {}
    for field in fields:
        name, _, value = field.partition(":")
        headers[name.strip().lower()] = value.strip()
    return line, headers, body


def answer(
    body: bytes, *, status: int = 200, close: bool = False, headers: dict[str, str] | None = None
) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    if close:
        extra += "Connection: close\r\n"
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}"
    return head.encode() + b"\r\n" + body


class Scripted:
    """asyncio servers on loopback, each running `handler` per connection; closed by `close()`."""

    def __init__(self) -> None:
        self.servers: list[asyncio.Server] = []

    async def start(self, handler: Handler) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        self.servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def canned(
        self, status: int = 200, body: bytes = b"{}", headers: dict[str, str] | None = None
    ) -> tuple[str, list[tuple[str, dict[str, str], bytes]]]:
        """A keep-alive server giving every request the same answer; the requests it received."""
        received: list[tuple[str, dict[str, str], bytes]] = []

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    received.append(parse_request(await read_request(reader)))
                    writer.write(answer(body, status=status, headers=headers))
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        return await self.start(handler), received

    def close(self) -> None:
        for server in self.servers:
            server.close()
