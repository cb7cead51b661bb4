"""api/deadline.py: the body's budget, and what the app sees when it runs out (in process, over ASGI)."""

from __future__ import annotations

import asyncio

import orjson
from starlette.types import Message, Receive, Scope, Send

from batchd.api.deadline import BYTES_PER_SECOND, BodyDeadline
from tests.unit.conftest import app_on

MB = 1024 * 1024


def scope(method: str = "POST", path: str = "/v1/messages/batches", **headers: str) -> Scope:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50000),
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }


async def never_body() -> Message:
    await asyncio.Event().wait()  # a client that stalls after its headers
    raise AssertionError


def test_the_budget_grows_with_the_declared_size_up_to_the_largest_body() -> None:
    deadline = BodyDeadline(app_on(object()), timeout=60.0, max_bytes=256 * MB)
    assert deadline.budget(scope()) == 60.0  # chunked or no body
    assert deadline.budget(scope(content_length=str(3 * MB))) == 60.0 + 3 * MB / BYTES_PER_SECOND
    assert deadline.budget(scope(content_length=str(10**15))) == 60.0 + 256  # never past max_bytes
    assert deadline.budget(scope(content_length="-1")) == 60.0


async def test_a_stalled_body_is_answered_408_in_the_error_envelope() -> None:
    app = BodyDeadline(app_on(object()), timeout=0.01, max_bytes=MB)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope(content_length="100", content_type="application/json"), never_body, send)
    start, body = sent[0], sent[1]
    assert start["status"] == 408 and (b"connection", b"close") in start["headers"]
    error = orjson.loads(body["body"])
    assert error["type"] == "error" and error["error"]["type"] == "timeout_error"
    assert "did not arrive in time" in error["error"]["message"]


async def test_only_the_wait_for_the_client_is_charged() -> None:
    """The app works longer between two reads than the whole budget: the client was not late."""
    chunks: list[Message] = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"cd", "more_body": False},
    ]
    read: list[bytes] = []

    async def receive() -> Message:
        return chunks.pop(0)

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            read.append(message["body"])
            await asyncio.sleep(0.05)  # the app's own work, five times the budget
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await BodyDeadline(slow_app, timeout=0.01, max_bytes=MB)(scope(), receive, send)
    assert read == [b"ab", b"cd"] and sent[0]["status"] == 200
