"""A real `batchd serve` with a routing table, a real fault-injecting upstream and the official SDK."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.acceptance.conftest import make_client, simple_request, wait_ended
from tests.acceptance.server import ServerProcess
from tests.integration.backends_upstream import Upstream


@pytest.fixture(scope="module")
def routed(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("routed")
    config = data / "batchd.toml"
    config.write_text(
        f"""
retry_base = "50ms"
retry_max = "200ms"
max_attempts = 3

[[routes]]
model = "up-anthropic-*"
backend = "anthropic"
base_url = "{upstream.url}"
upstream_model = "real-model"
timeout = "2s"
concurrency = 2

[[routes]]
model = "up-openai"
backend = "openai"
base_url = "{upstream.url}/v1"
api_key_env = "TEST_UPSTREAM_KEY"
timeout = "2s"
"""
    )
    proc = ServerProcess(data / "d", {"BATCHD_CONFIG": str(config), "TEST_UPSTREAM_KEY": "up-secret"}).start()
    yield proc
    proc.stop()


def req(custom_id: str, model: str, text: str, **params: Any) -> dict[str, object]:
    return simple_request(custom_id, text, model=model, max_tokens=64, **params)


def test_batch_through_routes_with_retries(routed: ServerProcess, upstream: Upstream) -> None:
    a = "up-anthropic-1"
    requests = [
        req("a-ok", a, "hello there"),
        req("a-529", a, "a529 fail=529x2"),
        req("a-429", a, "a429 fail=429x1 retry_after=1"),
        req("a-500", a, "a500 fail=500x9"),
        req("a-400", a, "a400 fail=400x1"),
        req("a-stall", a, "astall stall=5x1"),
        req("o-think", "up-openai", "o think", thinking={"type": "enabled"}),
        req("o-web", "up-openai", "o web", web_search={"type": "enabled"}),
        req("sim", "my-local-model", "to the simulator"),
    ]
    with make_client(routed.base_url) as client:
        batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        wait_ended(client, batch.id, len(requests), timeout=60)
        results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}

    ok = results["a-ok"]
    assert ok.type == "succeeded" and ok.message.content[0].text == "echo: hello there"  # type: ignore[union-attr]
    assert ok.message.model == a  # type: ignore[union-attr]
    assert results["a-529"].type == "succeeded" and len(upstream.arrivals["a529 fail=529x2"]) == 3
    assert results["a-429"].type == "succeeded"
    first, second = upstream.arrivals["a429 fail=429x1 retry_after=1"]
    assert second - first >= 0.95  # retry-after honoured
    failed = results["a-500"]
    assert failed.type == "errored" and failed.error.error.type == "api_error"  # type: ignore[union-attr]
    assert "injected 500 on call 3" in failed.error.error.message  # type: ignore[union-attr]
    assert len(upstream.arrivals["a500 fail=500x9"]) == 3  # max_attempts
    final = results["a-400"]
    assert final.type == "errored" and final.error.error.type == "invalid_request_error"  # type: ignore[union-attr]
    assert len(upstream.arrivals["a400 fail=400x1"]) == 1  # a final error is not retried
    assert results["a-stall"].type == "succeeded" and len(upstream.arrivals["astall stall=5x1"]) == 2
    think = results["o-think"]
    assert think.type == "succeeded"
    assert [b.type for b in think.message.content] == ["thinking", "text"]  # type: ignore[union-attr]
    assert think.message.usage.cache_read_input_tokens == 6  # type: ignore[union-attr]
    # batchd runs web search itself (tools/loop): the model is offered a `web_search` function; this
    # upstream only echoes, so it answers without calling it and no search runs.
    web = results["o-web"]
    assert web.type == "succeeded" and web.message.content[0].text == "echo: o web"  # type: ignore[union-attr]
    assert web.message.usage.server_tool_use.web_search_requests == 0  # type: ignore[union-attr]
    offered = [b["tools"] for path, _, b in upstream.calls if path == "/v1/chat/completions" and "tools" in b]
    assert offered and offered[0][0]["function"]["name"] == "web_search"
    assert results["sim"].type == "succeeded"
    headers = [h for path, h, b in upstream.calls if path == "/v1/chat/completions"]
    assert headers and all(h["authorization"] == "Bearer up-secret" for h in headers)
    assert all(b["model"] == "real-model" for path, _, b in upstream.calls if path == "/v1/messages")


def test_models_list(routed: ServerProcess, upstream: Upstream) -> None:
    with make_client(routed.base_url) as client:
        page = client.models.list()
        # Names only: up-anthropic-* maps every name onto one upstream model, and the simulator
        # answers any name, so neither glob is listed (tests/acceptance/test_sdk_fidelity.py lists
        # a glob's upstream models).
        assert [m.id for m in page.data] == ["up-openai"]
        assert page.data[0].display_name == f"up-openai → openai {upstream.url}/v1"
        assert client.models.retrieve("up-openai").id == "up-openai"
        assert "anthropic" in client.models.retrieve("up-anthropic-7").display_name


def test_sync_messages_through_routes(routed: ServerProcess) -> None:
    with make_client(routed.base_url) as client:
        kw: dict[str, Any] = {"max_tokens": 64}
        m = client.messages.create(model="up-openai", messages=[{"role": "user", "content": "sync hi"}], **kw)
        assert m.content[0].text == "echo: sync hi"  # type: ignore[union-attr]
        m = client.messages.create(
            model="up-anthropic-x", messages=[{"role": "user", "content": "sync a"}], **kw
        )
        assert m.model == "up-anthropic-x" and m.usage.input_tokens == 7
        m = client.messages.create(
            model="my-local-model", messages=[{"role": "user", "content": "sim"}], **kw
        )
        assert m.stop_reason in ("end_turn", "max_tokens")
        with client.messages.stream(
            model="up-openai",
            messages=[{"role": "user", "content": "stream think call=f"}],
            thinking={"type": "enabled"},
            tools=[{"name": "f", "input_schema": {"type": "object"}}],
            **kw,
        ) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text == "echo: stream think call=f"
        assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
        assert final.content[2].input == {"q": 1}  # type: ignore[union-attr]
        with pytest.raises(anthropic.BadRequestError, match="injected 400"):
            client.messages.create(
                model="up-openai", messages=[{"role": "user", "content": "s fail=400x1"}], **kw
            )
        with pytest.raises(anthropic.RateLimitError) as info:
            client.messages.create(
                model="up-anthropic-x",
                messages=[{"role": "user", "content": "s fail=429x1 retry_after=7"}],
                **kw,
            )
        assert info.value.response.headers["retry-after"] == "7"
    bad = httpx.post(
        routed.base_url + "/v1/messages", json={"model": "up-openai", "messages": []}, timeout=10
    )
    assert bad.status_code == 400
    assert bad.json()["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}


def test_bad_routes_stop_the_start(tmp_path: Path) -> None:
    env = {"BATCHD_ROUTES": '[{"model": "x", "backend": "openai"}]', "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "batchd", "serve", "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert b"base_url is required for the openai backend" in proc.stderr
    env["BATCHD_ROUTES"] = (
        '[{"model": "x", "backend": "openai", "base_url": "http://h", "api_key_env": "NOPE_KEY"}]'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "batchd", "serve", "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 2 and b"NOPE_KEY, which is not set" in proc.stderr
