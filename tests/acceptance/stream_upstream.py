"""A loopback model server that streams slowly, for the streaming tests (a real socket, uvicorn).

- `POST /v1/chat/completions` (OpenAI-compatible): the answer is `echo: <the user's text>`, or a
  call to tool NAME for `call=NAME`; streamed (`stream: true`) as chunks (openai_chunks.py), else
  whole. Words in the user's text script the stream:
  - `gate`: after the first text chunk, wait until the test sets `gate` (10 s at most);
    `released` says whether it was set, `finished` whether the answer was sent to its end;
  - `error`: after two chunks, an `error` chunk (as vLLM and llama.cpp send one);
  - `drop`: after two chunks, the connection is cut;
  - `forever`: a chunk every 20 ms for 20 s; `closed` is set when the client has gone away;
  - `fail=STATUS`: that HTTP error before any byte;
  - `strict`: a 422 for a body with `stream_options`, as a server validating strictly answers.
- `POST /v1/messages` (Anthropic-compatible): `echo: …` as Anthropic's events, a `ping` among
  them, the model named `MODEL_UP`; whole without `stream`.

Every body received is kept in `bodies`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.acceptance import openai_chunks
from tests.acceptance.server import ThreadedApp

MODEL_UP = "upstream-model-name"
CITY = {"city": "Paris"}
_CALL = re.compile(r"call=(\w+)")
_FAIL = re.compile(r"fail=(\d{3})")


def _text(body: dict[str, Any]) -> str:
    user = next(m for m in reversed(body["messages"]) if m["role"] == "user")
    content = user["content"]
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)


def _digest(body: dict[str, Any]) -> str:
    asked = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()[:16]


class StreamUpstream:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.gate = threading.Event()
        self.released = False
        self.finished = threading.Event()
        self.closed = threading.Event()
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/messages", self.messages, methods=["POST"]),
            ]
        )
        self.app = ThreadedApp(app)
        self.url = self.app.url

    def start(self) -> StreamUpstream:
        self.app.serve()
        return self

    def stop(self) -> None:
        self.gate.set()
        self.app.stop()

    def reset(self) -> None:
        self.gate.clear()
        self.finished.clear()
        self.closed.clear()
        self.released = False

    # -- OpenAI-compatible -----------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        self.bodies.append(body)
        text = _text(body)
        failed = _FAIL.search(text)
        if failed:
            status = int(failed.group(1))
            error = {
                "message": f"scripted {status}",
                "type": "rate_limit_error" if status == 429 else "api_error",
            }
            return JSONResponse({"error": error}, status_code=status)
        if "strict" in text and "stream_options" in body:  # a server that refuses the field
            error = {
                "message": "Extra inputs are not permitted: stream_options",
                "type": "invalid_request_error",
            }
            return JSONResponse({"error": error}, status_code=422)
        tools = {t["function"]["name"] for t in body.get("tools") or ()}
        called = _CALL.search(text)
        message: dict[str, Any] = {"role": "assistant", "content": f"echo: {text}"}
        finish = "stop"
        if called and called.group(1) in tools:
            arguments = json.dumps(CITY)
            call = {
                "id": "call_1",
                "type": "function",
                "function": {"name": called.group(1), "arguments": arguments},
            }
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            finish = "tool_calls"
        completion = {
            "id": f"chatcmpl-{_digest(body)}",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 7},
        }
        if not body.get("stream"):
            return JSONResponse(completion)
        return StreamingResponse(self._chunks(completion, text), media_type="text/event-stream")

    async def _chunks(self, completion: dict[str, Any], text: str) -> AsyncIterator[bytes]:
        parts = [openai_chunks.encoded(c) for c in openai_chunks.chunks(completion, size=3)]
        try:
            if "forever" in text:
                yield parts[0]
                for _ in range(1000):
                    yield parts[1]  # the same words again and again
                    await asyncio.sleep(0.02)
                return
            for i, part in enumerate(parts):
                yield part
                await asyncio.sleep(0.005)
                if i == 1 and "gate" in text:
                    self.released = await asyncio.to_thread(self.gate.wait, 10)
                if i == 1 and "error" in text:
                    error = {
                        "error": {"message": "the engine ran out of memory", "type": "api_error", "code": 500}
                    }
                    yield b"data: " + json.dumps(error).encode() + b"\n\n"
                    return
                if i == 1 and "drop" in text:
                    raise ConnectionResetError("scripted drop")
            yield openai_chunks.DONE
            self.finished.set()
        finally:
            if not self.finished.is_set():
                self.closed.set()

    # -- Anthropic-compatible ---------------------------------------------------------------

    async def messages(self, request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        self.bodies.append(body)
        text = f"echo: {_text(body)}"
        message = {
            "id": f"msg_up{_digest(body)}",
            "type": "message",
            "role": "assistant",
            "model": MODEL_UP,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 11, "output_tokens": 5, "cache_read_input_tokens": 3},
        }
        if not body.get("stream"):
            return JSONResponse(message)
        return StreamingResponse(self._events(message), media_type="text/event-stream")

    async def _events(self, message: dict[str, Any]) -> AsyncIterator[bytes]:
        def event(name: str, data: dict[str, Any]) -> bytes:
            return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()

        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {**message["usage"], "output_tokens": 1},
        }
        yield event("message_start", {"message": start})
        yield event("ping", {})
        yield event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        for piece in openai_chunks.pieces(message["content"][0]["text"]):
            yield event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
            await asyncio.sleep(0.005)
        yield event("content_block_stop", {"index": 0})
        delta = {"delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 5}}
        yield event("message_delta", delta)
        yield event("message_stop", {})
