"""The anthropic backend and the shared HTTP error mapping, against a real loopback server."""

from __future__ import annotations

import asyncio
import email.utils
import socket
from typing import Any

import orjson
import pytest

from batchd import exceptions
from batchd.backends import http
from batchd.backends.anthropic import AnthropicBackend, betas_for
from batchd.config.routes import AuthMode, ReasoningMode
from tests.integration.backends_upstream import Scripted, read_request

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


async def test_request_shape_and_headers(scripted: Scripted) -> None:
    url, seen = await scripted.canned(body=orjson.dumps(MESSAGE))
    b = AnthropicBackend(url + "/v1", upstream_model="qwen", api_key="sk-1", betas=("fixed-1",))
    tools = [{"type": "code_execution_20250825", "name": "code_execution"}]
    message = await b.create_message({**PARAMS, "tools": tools}, betas=("client-2",))
    await b.aclose()
    line, headers, body = seen[0]
    assert line == "POST /v1/messages HTTP/1.1"
    assert headers["x-api-key"] == "sk-1"
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "fixed-1,client-2,code-execution-2025-08-25"
    assert orjson.loads(body)["model"] == "qwen"
    assert message["model"] == "claude-x"
    assert message["usage"]["cache_read_input_tokens"] == 0


async def test_bearer_auth_and_no_beta(scripted: Scripted) -> None:
    url, seen = await scripted.canned(body=orjson.dumps(MESSAGE))
    b = AnthropicBackend(url, api_key="sk-1", auth=AuthMode.BEARER)
    await b.create_message(PARAMS)
    await b.aclose()
    _, headers, _ = seen[0]
    assert headers["authorization"] == "Bearer sk-1"
    assert "x-api-key" not in headers and "anthropic-beta" not in headers


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
    scripted: Scripted,
    status: int,
    body: Any,
    headers: dict[str, str],
    error_type: str,
    retryable: bool,
    retry_after: float | None,
) -> None:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    url, _ = await scripted.canned(status, content, headers)
    b = AnthropicBackend(url)
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
    assert http.parse_retry_after({"retry-after": when}, now=1_000_000.0) == 10.0
    assert http.parse_retry_after({"retry-after": "soon"}) is None
    assert http.parse_retry_after({"retry-after-ms": "x", "retry-after": "2"}) == 2.0


async def test_transport_errors_are_retryable(scripted: Scripted) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    stalled = await scripted.start(stall)
    for url, cls in ((refused, exceptions.BackendError), (stalled, exceptions.BackendTimeout)):
        b = AnthropicBackend(url, timeout=0.3)
        with pytest.raises(cls) as info:
            await b.create_message(PARAMS)
        await b.aclose()
        assert info.value.retryable


async def test_not_a_message(scripted: Scripted) -> None:
    url, _ = await scripted.canned(body=b'{"hello": "world"}')
    b = AnthropicBackend(url)
    with pytest.raises(exceptions.BackendError, match="not a Message"):
        await b.create_message(PARAMS)
    await b.aclose()


async def test_connection_limits_match_concurrency(scripted: Scripted) -> None:
    url, _ = await scripted.canned()
    up = http.Upstream("u", url, concurrency=7, timeout=5.0)
    await up.post_json("/x", {})  # the session opens on the first call
    connector = up._session.connector  # type: ignore[union-attr]
    assert connector is not None and connector.limit == 7 and connector.limit_per_host == 7
    await up.aclose()


@pytest.mark.parametrize(
    ("thinking", "on"), [(None, False), ({"type": "enabled", "budget_tokens": 1024}, True)]
)
async def test_chat_template_kwargs_for_engines(
    scripted: Scripted, thinking: dict[str, Any] | None, on: bool
) -> None:
    url, seen = await scripted.canned(body=orjson.dumps(MESSAGE))
    b = AnthropicBackend(url, reasoning=ReasoningMode.CHAT_TEMPLATE_KWARGS)
    await b.create_message({**PARAMS, **({"thinking": thinking} if thinking else {})})
    plain = AnthropicBackend(url)
    await plain.create_message(PARAMS)
    await b.aclose()
    await plain.aclose()
    assert orjson.loads(seen[0][2])["chat_template_kwargs"] == {"enable_thinking": on}
    assert "chat_template_kwargs" not in orjson.loads(seen[1][2])  # Anthropic's API would refuse it


async def test_count_tokens_asks_the_upstreams_own_endpoint(scripted: Scripted) -> None:
    url, seen = await scripted.canned(body=b'{"input_tokens": 77}')
    b = AnthropicBackend(url, upstream_model="qwen", api_key="sk-1")
    prepared = {**PARAMS, "system": "Be brief.", "temperature": 0.5, "output_format": {"type": "json_schema"}}
    assert await b.count_tokens(prepared, betas=("client-2",)) == 77
    await b.aclose()
    line, headers, body = seen[0]
    assert line == "POST /v1/messages/count_tokens HTTP/1.1" and headers["x-api-key"] == "sk-1"
    assert headers["anthropic-beta"] == "client-2,structured-outputs-2025-11-13"
    # Only what a count takes: no max_tokens, no sampling options.
    assert orjson.loads(body) == {
        "model": "qwen",
        "messages": PARAMS["messages"],
        "system": "Be brief.",
        "output_format": {"type": "json_schema"},
    }


async def test_a_count_without_input_tokens_is_an_error(scripted: Scripted) -> None:
    url, _ = await scripted.canned(body=b'{"tokens": 3}')
    b = AnthropicBackend(url)
    with pytest.raises(exceptions.BackendError, match="without input_tokens") as info:
        await b.count_tokens(PARAMS)
    await b.aclose()
    assert info.value.status == 502


async def test_model_ids(scripted: Scripted) -> None:
    url, seen = await scripted.canned(body=b'{"data": [{"id": "a"}, {"id": "b"}, {"type": "x"}]}')
    b = AnthropicBackend(url + "/v1")
    assert await b.model_ids() == ["a", "b"]
    await b.aclose()
    assert seen[0][0] == "GET /v1/models?limit=1000 HTTP/1.1"
