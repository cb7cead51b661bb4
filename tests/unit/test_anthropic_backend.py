"""The anthropic backend and the shared HTTP error mapping, through httpx.MockTransport."""

from __future__ import annotations

import email.utils
from typing import Any

import httpx
import orjson
import pytest

from batchd import exceptions
from batchd.backends import http
from batchd.backends.anthropic import AnthropicBackend, betas_for

PARAMS = {"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "up",
    "content": [{"type": "text", "text": "Yo"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 1},
}


def backend(handler: Any, **kwargs: Any) -> AnthropicBackend:
    return AnthropicBackend("http://up.invalid/v1", transport=httpx.MockTransport(handler), **kwargs)


async def test_request_shape_and_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=MESSAGE)

    b = backend(handler, upstream_model="qwen", api_key="sk-1", betas=("fixed-1",))
    tools = [{"type": "code_execution_20250825", "name": "code_execution"}]
    message = await b.create_message({**PARAMS, "tools": tools}, betas=("client-2",))
    await b.aclose()
    request = seen[0]
    assert str(request.url) == "http://up.invalid/v1/messages"
    assert request.headers["x-api-key"] == "sk-1"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["anthropic-beta"] == "fixed-1,client-2,code-execution-2025-08-25"
    assert orjson.loads(request.content)["model"] == "qwen"
    assert message["model"] == "claude-x"
    assert message["usage"]["cache_read_input_tokens"] == 0


async def test_bearer_auth_and_no_beta() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=MESSAGE)

    b = backend(handler, api_key="sk-1", auth="bearer")
    await b.create_message(PARAMS)
    await b.aclose()
    assert seen[0].headers["authorization"] == "Bearer sk-1"
    assert "x-api-key" not in seen[0].headers and "anthropic-beta" not in seen[0].headers


def test_betas_for() -> None:
    assert betas_for({"mcp_servers": [], "tools": [{"type": "computer_20250124", "name": "computer"}]}) == [
        "computer-use-2025-01-24",
        "mcp-client-2025-04-04",
    ]


@pytest.mark.parametrize(
    ("status", "body", "headers", "error_type", "retryable", "retry_after"),
    [
        (
            429,
            {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
            {"retry-after": "3"},
            "rate_limit_error",
            True,
            3.0,
        ),
        (
            529,
            {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
            {"retry-after-ms": "250"},
            "overloaded_error",
            True,
            0.25,
        ),
        (500, {"error": {"message": "boom", "type": "server_error"}}, {}, "api_error", True, None),
        (503, b"<html>gateway</html>", {}, "api_error", True, None),
        (408, {}, {}, "timeout_error", True, None),
        (409, {}, {}, "invalid_request_error", True, None),
        (
            400,
            {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}},
            {},
            "invalid_request_error",
            False,
            None,
        ),
        (401, {"error": {"message": "no key"}}, {}, "authentication_error", False, None),
        (404, {"detail": "Not Found"}, {}, "not_found_error", False, None),
        (429, {}, {"x-should-retry": "false"}, "rate_limit_error", False, None),
    ],
)
async def test_error_mapping(
    status: int,
    body: Any,
    headers: dict[str, str],
    error_type: str,
    retryable: bool,
    retry_after: float | None,
) -> None:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    b = backend(lambda _: httpx.Response(status, content=content, headers=headers))
    with pytest.raises(exceptions.BackendError) as info:
        await b.create_message(PARAMS)
    await b.aclose()
    exc = info.value
    assert (exc.status, exc.error_type, exc.retryable, exc.retry_after) == (
        status,
        error_type,
        retryable,
        retry_after,
    )
    assert f"returned HTTP {status}" in exc.message


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(1_000_010.0, usegmt=True)
    assert http.parse_retry_after(httpx.Headers({"retry-after": when}), now=1_000_000.0) == 10.0
    assert http.parse_retry_after(httpx.Headers({"retry-after": "soon"})) is None
    assert http.parse_retry_after(httpx.Headers({"retry-after-ms": "x", "retry-after": "2"})) == 2.0


async def test_transport_errors_are_retryable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def stall(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    for handler, cls in ((refuse, exceptions.BackendError), (stall, exceptions.BackendTimeout)):
        b = backend(handler)
        with pytest.raises(cls) as info:
            await b.create_message(PARAMS)
        await b.aclose()
        assert info.value.retryable


async def test_not_a_message() -> None:
    b = backend(lambda _: httpx.Response(200, json={"hello": "world"}))
    with pytest.raises(exceptions.BackendError, match="not a Message"):
        await b.create_message(PARAMS)
    await b.aclose()


def test_connection_limits_match_concurrency() -> None:
    up = http.Upstream("u", "http://h", concurrency=7, timeout=5.0)
    pool = up.client._transport._pool  # type: ignore[attr-defined]
    assert pool._max_connections == 7 and pool._max_keepalive_connections == 7


@pytest.mark.parametrize(
    ("thinking", "on"), [(None, False), ({"type": "enabled", "budget_tokens": 1024}, True)]
)
async def test_chat_template_kwargs_for_engines(thinking: dict[str, Any] | None, on: bool) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=MESSAGE)

    b = backend(handler, reasoning="chat_template_kwargs")
    await b.create_message({**PARAMS, **({"thinking": thinking} if thinking else {})})
    plain = backend(handler)
    await plain.create_message(PARAMS)
    await b.aclose()
    await plain.aclose()
    assert orjson.loads(seen[0].content)["chat_template_kwargs"] == {"enable_thinking": on}
    assert "chat_template_kwargs" not in orjson.loads(seen[1].content)  # Anthropic's API would refuse it
