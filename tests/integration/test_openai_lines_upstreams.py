"""OpenAI batch lines through the one routing table to real loopback upstreams (no mocks): an
OpenAI-compatible one gets the body untouched but for `model`; an Anthropic-compatible one gets
chat completions translated. Retries, final errors and timeouts become the lines OpenAI writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from batchd import config, models
from batchd.engine.router import Router
from batchd.store import Store, open_store
from tests.integration.backends_upstream import Upstream
from tests.unit.engine import harness
from tests.unit.engine.openai_harness import chat, line, lines_of, make_batch

ROUTES = """
[batchd]
data_dir = "{data}"
retry_base = "1ms"
retry_max = "5ms"
max_attempts = 3
request_timeout = "{timeout}"

[[routes]]
model = "gpt-*"
backend = "openai"
base_url = "{url}/v1"
upstream_model = "served-model"
api_key_env = "UP_KEY"
concurrency = 2

[[routes]]
model = "claude-*"
backend = "anthropic"
base_url = "{url}"
upstream_model = "claude-real"
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    up = Upstream().start()
    yield up
    up.stop()


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'lines.db'}")
    await store.open()
    yield store
    await store.aclose()


async def run(
    store: Store, upstream: Upstream, tmp_path: Path, lines: list[bytes], timeout: str = "10s"
) -> tuple[models.Batch, dict[str, dict[str, Any]]]:
    path = tmp_path / "batchd.toml"
    path.write_text(ROUTES.format(url=upstream.url, data=tmp_path, timeout=timeout))
    settings = config.load(config_file=str(path), environ={})
    router = Router.from_settings(settings, environ={"UP_KEY": "k-up"})
    batch = await make_batch(store, lines)
    try:
        async with harness.running(store, router, settings):
            ended = await harness.until_ended(store, batch.id, timeout=20)
    finally:
        await router.aclose()
    found = await lines_of(store, batch.id)
    assert len(found) == len(lines)
    return ended, found


def sent(upstream: Upstream, marker: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The last call whose body mentions `marker`."""
    return next(c for c in reversed(upstream.calls) if marker in str(c[2]))


async def test_an_openai_upstream_gets_the_body_untouched_but_model(
    sqlite: Store, upstream: Upstream, tmp_path: Path
) -> None:
    body = chat(
        "untouched please",
        model="gpt-4o",
        max_tokens=9,
        logit_bias={"50256": -100},
        seed=3,
        stream=True,
        stream_options={"include_usage": True},
        top_k=5,
        n=2,
    )
    embed = {"model": "gpt-embed", "input": ["emb one", "emb two"], "dimensions": 2}
    complete = {"model": "gpt-text", "prompt": "complete me", "max_tokens": 4}
    batch, found = await run(
        sqlite,
        upstream,
        tmp_path,
        [
            line("chat", body),
            line("emb", embed, url="/v1/embeddings"),
            line("txt", complete, url="/v1/completions"),
        ],
    )
    assert batch.request_counts.succeeded == 3
    path, headers, arrived = sent(upstream, "untouched please")
    assert path == "/v1/chat/completions" and headers["authorization"] == "Bearer k-up"
    expected = {k: v for k, v in body.items() if k != "stream_options"}
    assert arrived == {**expected, "model": "served-model", "stream": False}
    response = found["chat"]["response"]
    assert response["status_code"] == 200 and response["body"]["id"] == "chatcmpl-1"
    assert response["body"]["choices"][0]["message"]["content"] == "echo: untouched please"
    assert sent(upstream, "emb one")[2] == {**embed, "model": "served-model"}
    assert found["emb"]["response"]["body"]["data"][1]["embedding"] == [7.0, 1.0]
    assert sent(upstream, "complete me")[0] == "/v1/completions"
    assert found["txt"]["response"]["body"]["choices"][0]["text"] == "echo: complete me"


async def test_retries_final_errors_and_timeouts_become_openai_lines(
    sqlite: Store, upstream: Upstream, tmp_path: Path
) -> None:
    lines = [
        line("retried", chat("busy fail=429x2", model="gpt-4o")),
        line("final", chat("refused fail=400x1", model="gpt-4o")),
        line("down", chat("broken fail=500x9", model="gpt-4o")),
        line("slow", chat("stuck stall=1x9", model="gpt-4o")),
    ]
    batch, found = await run(sqlite, upstream, tmp_path, lines, timeout="300ms")
    assert batch.request_counts == models.RequestCounts(succeeded=1, errored=3)
    assert upstream.seen["busy fail=429x2"] == 3
    assert found["retried"]["response"]["status_code"] == 200
    final = found["final"]["response"]
    assert final["status_code"] == 400 and found["final"]["error"] is None
    assert final["body"] == {
        "error": {
            "message": "injected 400 on call 1",
            "type": "invalid_request_error",
            "param": None,
            "code": 400,
        }
    }
    assert upstream.seen["refused fail=400x1"] == 1  # a final 4xx is not retried
    assert found["down"]["response"]["status_code"] == 500
    assert upstream.seen["broken fail=500x9"] == 3  # max_attempts
    assert found["slow"]["response"] is None
    assert found["slow"]["error"]["code"] == "request_timeout"


async def test_lines_keep_to_their_route_concurrency(
    sqlite: Store, upstream: Upstream, tmp_path: Path
) -> None:
    deadline = time.monotonic() + 5
    while upstream.inflight:  # stalled calls of earlier tests, timed out here, still held there
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    upstream.max_inflight = 0
    lines = [line(f"c{i}", chat(f"parallel {i} stall=0.1x1", model="gpt-4o")) for i in range(8)]
    batch, _ = await run(sqlite, upstream, tmp_path, lines)
    assert batch.request_counts.succeeded == 8
    # the route's concurrency bounds them, not the engine's (an adaptive limit may hold them lower)
    assert 1 <= upstream.max_inflight <= 2


async def test_an_anthropic_upstream_gets_chat_completions_translated(
    sqlite: Store, upstream: Upstream, tmp_path: Path
) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    lines = [
        line(
            "chat",
            {
                "model": "claude-x",
                "messages": [
                    {"role": "system", "content": "Be terse."},
                    {"role": "user", "content": "translate me call=lookup"},
                ],
                "max_completion_tokens": 50,
                "tools": tools,
                "stop": ["STOP"],
            },
        ),
        line("refused", chat("no fail=400x1", model="claude-x")),
        line("untranslatable", chat("x", model="claude-x", logprobs=True)),
        line("embed", {"model": "claude-x", "input": "x"}, url="/v1/embeddings"),
    ]
    batch, found = await run(sqlite, upstream, tmp_path, lines)
    assert batch.request_counts == models.RequestCounts(succeeded=1, errored=3)
    path, _, arrived = sent(upstream, "translate me")
    assert path == "/v1/messages"
    assert (
        arrived["model"] == "claude-real" and arrived["system"] == "Be terse." and arrived["max_tokens"] == 50
    )
    assert arrived["tools"] == [{"name": "lookup", "input_schema": {"type": "object"}}]
    assert arrived["stop_sequences"] == ["STOP"]
    done = found["chat"]["response"]["body"]
    assert done["object"] == "chat.completion" and done["model"] == "claude-x"
    choice = done["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "echo: translate me call=lookup"
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "lookup", "arguments": '{"q":1}'}
    assert done["usage"]["prompt_tokens"] == 7 and done["usage"]["completion_tokens"] == 3
    refused = found["refused"]["response"]
    assert refused["status_code"] == 400
    assert refused["body"] == {
        "error": {
            "message": "injected 400 on call 1",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    assert found["untranslatable"]["response"]["body"]["error"]["param"] == "logprobs"
    assert not any("logprobs" in str(c[2]) for c in upstream.calls)  # refused before sending
    assert found["embed"]["response"]["status_code"] == 400
    assert found["embed"]["response"]["body"]["error"]["param"] == "url"


@pytest.mark.postgres
async def test_simulator_lines_on_postgres(pg_url: str) -> None:
    from batchd.backends.simulator import SimulatedBackend

    store = open_store(pg_url)
    await store.open()
    try:
        lines = [line(f"c{i}", chat(f"q{i}")) for i in range(30)]
        lines.append(line("e", {"model": "m", "input": "vector"}, url="/v1/embeddings"))
        lines.append(line("x", chat("no @sim:error=overloaded")))
        batch = await make_batch(store, lines)
        async with harness.running(store, SimulatedBackend(), harness.settings_of()):
            ended = await harness.until_ended(store, batch.id)
        assert ended.request_counts == models.RequestCounts(succeeded=31, errored=1)
        found = await lines_of(store, batch.id)
        assert len(found) == 32 and found["x"]["response"]["status_code"] == 529
    finally:
        await store.aclose()
