"""The HTTP backends' `stream_message` against the faulty loopback upstream, which answers whole
(it does not stream): the answer comes as its events, and an HTTP error before any event is raised
as the plain call raises it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from batchd import exceptions
from batchd.backends.anthropic import AnthropicBackend
from batchd.backends.openai import OpenAIBackend
from batchd.backends.streaming import Accumulator
from tests.integration.backends_upstream import Upstream


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    up = Upstream().start()
    yield up
    up.stop()


def params(text: str, **extra: object) -> dict[str, Any]:
    return {"model": "claude-x", "max_tokens": 50, "messages": [{"role": "user", "content": text}], **extra}


def backends(upstream: Upstream) -> list[Any]:
    return [
        AnthropicBackend(upstream.url, upstream_model="real-model", concurrency=2, timeout=5),
        OpenAIBackend(upstream.url + "/v1", concurrency=2, timeout=5),
    ]


@pytest.mark.parametrize("which", [0, 1])
async def test_a_whole_answer_is_streamed_as_its_events(upstream: Upstream, which: int) -> None:
    backend = backends(upstream)[which]
    p = params(
        f"hello {which} think call=lookup", tools=[{"name": "lookup", "input_schema": {"type": "object"}}]
    )
    try:
        plain = await backend.create_message(p)
        acc = Accumulator()
        async for event in backend.stream_message(p):
            acc.add(*event)
    finally:
        await backend.aclose()
    assert upstream.calls[-1][2]["stream"] is True
    for m in (plain, acc.message):
        m.pop("id")
        m.pop("stop_details", None)
        for block in m["content"]:
            block.pop("id", None)
    assert acc.message == plain and acc.message["model"] == "claude-x"


@pytest.mark.parametrize("which", [0, 1])
async def test_an_http_error_comes_before_any_event(upstream: Upstream, which: int) -> None:
    backend = backends(upstream)[which]
    stream = backend.stream_message(params(f"stream {which} fail=429x1 retry_after=7"))
    try:
        with pytest.raises(exceptions.BackendError) as info:
            await anext(stream)
    finally:
        await backend.aclose()
    assert info.value.status == 429 and info.value.retryable and info.value.retry_after == 7
