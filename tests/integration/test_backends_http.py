"""The HTTP backends against a real loopback upstream that injects faults (no mocks)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from batchd import exceptions
from batchd.backends.anthropic import AnthropicBackend
from batchd.backends.openai import OpenAIBackend
from tests.integration.backends_upstream import Upstream


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    up = Upstream().start()
    yield up
    up.stop()


def params(text: str, **extra: object) -> dict[str, object]:
    return {"model": "claude-x", "max_tokens": 50, "messages": [{"role": "user", "content": text}], **extra}


async def test_anthropic_round_trip(upstream: Upstream) -> None:
    b = AnthropicBackend(upstream.url, upstream_model="real-model", api_key="k1", concurrency=2, timeout=5)
    try:
        message = await b.create_message(params("hello anthropic call=lookup"))
    finally:
        await b.aclose()
    assert message["content"][0] == {"type": "text", "text": "echo: hello anthropic call=lookup"}
    assert message["content"][1]["name"] == "lookup" and message["stop_reason"] == "tool_use"
    path, headers, body = next(
        c for c in upstream.calls if c[2]["messages"][0]["content"] == "hello anthropic call=lookup"
    )
    assert path == "/v1/messages" and headers["x-api-key"] == "k1" and body["model"] == "real-model"


async def test_openai_round_trip_with_thinking_and_tools(upstream: Upstream) -> None:
    b = OpenAIBackend(upstream.url + "/v1", api_key="k2", concurrency=2, timeout=5)
    tools = [{"name": "lookup", "input_schema": {"type": "object"}}]
    try:
        message = await b.create_message(
            params(
                "hello openai think call=lookup",
                tools=tools,
                thinking={"type": "enabled", "budget_tokens": 20},
            )
        )
    finally:
        await b.aclose()
    assert [c["type"] for c in message["content"]] == ["thinking", "text", "tool_use"]
    assert message["usage"]["cache_read_input_tokens"] == 6 and message["usage"]["input_tokens"] == 4
    _, headers, body = upstream.calls[-1]
    assert headers["authorization"] == "Bearer k2"
    assert body["tools"][0]["function"]["name"] == "lookup"


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
async def test_faults_map_to_backend_errors(upstream: Upstream, kind: str) -> None:
    cls = AnthropicBackend if kind == "anthropic" else OpenAIBackend
    b = cls(upstream.url + ("/v1" if kind == "openai" else ""), concurrency=4, timeout=0.5)
    cases = [
        (f"{kind} fail=429x1 retry_after=2", 429, "rate_limit_error", True, 2.0),
        (f"{kind} fail=529x1 retry_after_ms=1500", 529, "overloaded_error", True, 1.5),
        (f"{kind} fail=500x1", 500, "api_error", True, None),
        (f"{kind} fail=400x1", 400, "invalid_request_error", False, None),
    ]
    try:
        for text, status, error_type, retryable, retry_after in cases:
            with pytest.raises(exceptions.BackendError) as info:
                await b.create_message(params(text))
            exc = info.value
            assert (exc.status, exc.error_type, exc.retryable, exc.retry_after) == (
                status,
                error_type,
                retryable,
                retry_after,
            )
            assert f"injected {status} on call 1" in exc.message
            await b.create_message(params(text))  # the second call succeeds
        started = time.monotonic()
        with pytest.raises(exceptions.BackendTimeout):
            await b.create_message(params(f"{kind} stall=3x1"))
        assert time.monotonic() - started < 2.5
        with pytest.raises(exceptions.BackendError, match="not JSON") as info:
            await b.create_message(params(f"{kind} badjson"))
        assert info.value.retryable
    finally:
        await b.aclose()


async def test_connection_refused_is_retryable() -> None:
    from tests.acceptance.server import free_port

    b = OpenAIBackend(f"http://127.0.0.1:{free_port()}/v1", concurrency=1, timeout=2)
    with pytest.raises(exceptions.BackendError, match="could not be reached") as info:
        await b.create_message(params("x"))
    await b.aclose()
    assert info.value.retryable and info.value.status == 502


async def test_one_client_bounded_by_concurrency() -> None:
    upstream = Upstream().start()  # its own: stalled calls of other tests may still be running
    b = AnthropicBackend(upstream.url, concurrency=3, timeout=5)
    try:
        await asyncio.gather(*(b.create_message(params(f"par{i} stall=0.2x1")) for i in range(9)))
    finally:
        await b.aclose()
        upstream.stop()
    assert upstream.max_inflight == 3  # the connection pool is the limit, even without the router
