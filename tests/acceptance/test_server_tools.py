"""Server tools run by batchd for real-model routes: a real `batchd serve`, the official SDK (strict),
a local search index built by `batchd index build`, and loopback OpenAI- and Anthropic-compatible
upstreams that call `web_search` (tests/acceptance/tool_upstream.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from tests.acceptance.conftest import make_client, wait_ended
from tests.acceptance.server import ServerProcess
from tests.acceptance.tool_upstream import ToolUpstream

CORPUS = [
    {"url": "https://news.example/llama-farm", "title": "Latest news from the llama farm",
     "text": "The llama farm opened a new barn in May. Visitors can feed the llamas on Sundays.",
     "page_age": "May 3, 2026"},
    {"url": "https://science.example/shannon", "title": "Claude Shannon",
     "text": "Claude Shannon was born on April 30, 1916, in Petoskey, Michigan. He founded information "
             "theory."},
    {"url": "https://ai.example/news", "title": "AI news this week",
     "text": "Open models now run web search through batchd. Benchmarks improved again."},
]  # fmt: skip
ROUTES = ("oa-model", "an-model")  # the OpenAI-compatible and the Anthropic-compatible route


@pytest.fixture(scope="module")
def upstream() -> Iterator[ToolUpstream]:
    up = ToolUpstream().start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def search_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    source = folder / "corpus.jsonl"
    source.write_bytes(b"\n".join(orjson.dumps(d) for d in CORPUS))
    out = folder / "index.db"
    subprocess.run(
        [sys.executable, "-m", "batchd", "index", "build", str(source), "--out", str(out)], check=True,
        capture_output=True,
    )  # fmt: skip
    return out


def start(tmp_path: Path, upstream: ToolUpstream, index: Path, **env: str) -> ServerProcess:
    config = tmp_path / "batchd.toml"
    config.write_text(
        f'[web_search]\nindex = "{index}"\n'
        f'[[routes]]\nmodel = "oa-*"\nbackend = "openai"\nbase_url = "{upstream.url}/v1"\n'
        f'[[routes]]\nmodel = "an-*"\nbackend = "anthropic"\nbase_url = "{upstream.url}"\n'
        f'[[routes]]\nmodel = "claude-sonnet-4-5-20250929"\nbackend = "openai"\n'
        f'base_url = "{upstream.url}/v1"\n'
    )
    extra = {f"BATCHD_{k.upper()}": v for k, v in env.items()}
    return ServerProcess(tmp_path / "d", {"BATCHD_CONFIG": str(config), **extra}).start()


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, upstream: ToolUpstream, search_index: Path
) -> Iterator[ServerProcess]:
    proc = start(tmp_path_factory.mktemp("served"), upstream, search_index)
    yield proc
    proc.stop()


def ask(custom_id: str, model: str, text: str, **extra: Any) -> dict[str, Any]:
    params = {"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": text}], **extra}
    return {"custom_id": custom_id, "params": params}


WEB_SEARCH = [{"type": "web_search_20250305", "name": "web_search"}]


def run(client: anthropic.Anthropic, requests: list[dict[str, Any]]) -> dict[str, Any]:
    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    wait_ended(client, batch.id, len(requests), timeout=60)
    return {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}


@pytest.mark.parametrize("model", ROUTES)
def test_search_and_answer_through_a_real_route(
    served: ServerProcess, upstream: ToolUpstream, model: str
) -> None:
    with make_client(served.base_url) as client:
        results = run(client, [ask("q", model, "When was Claude Shannon born?", tools=WEB_SEARCH)])
    result = results["q"]
    assert result.type == "succeeded", result
    message = result.message
    kinds = [b.type for b in message.content]
    assert kinds[-3:] == ["server_tool_use", "web_search_tool_result", "text"]
    call, found, answer = message.content[-3:]
    assert call.id.startswith("srvtoolu_01") and len(call.id) == len("srvtoolu_01") + 22
    assert found.tool_use_id == call.id
    assert found.content[0].url == "https://science.example/shannon"
    assert found.content[0].title == "Claude Shannon"
    # The model read the page batchd found and quoted it.
    assert (
        answer.text
        == "According to the search, Claude Shannon was born on April 30, 1916, in Petoskey, Michigan."
    )
    assert message.stop_reason == "end_turn"
    assert message.usage.server_tool_use.web_search_requests == 1
    assert message.usage.server_tool_use.web_fetch_requests == 0
    assert message.usage.output_tokens in (14, 18)  # two calls' tokens, summed


def test_multi_turn_round_trip_with_the_sdk(served: ServerProcess, upstream: ToolUpstream) -> None:
    with make_client(served.base_url) as client:
        first = client.messages.create(  # type: ignore[call-overload]
            model="an-model", max_tokens=256, tools=WEB_SEARCH,
            messages=[{"role": "user", "content": "When was Claude Shannon born?"}],
        )  # fmt: skip
        blocks = [b.model_dump(exclude_none=True) for b in first.content]
        assert {b["type"] for b in blocks} == {"text", "server_tool_use", "web_search_tool_result"}
        before = len(upstream.bodies)
        second = client.messages.create(  # type: ignore[call-overload]
            model="an-model", max_tokens=256, tools=WEB_SEARCH,
            messages=[
                {"role": "user", "content": "When was Claude Shannon born?"},
                {"role": "assistant", "content": blocks},
                {"role": "user", "content": "Thanks. And where?"},
            ],
        )  # fmt: skip
    assert second.stop_reason == "end_turn"
    assert [b.type for b in second.content] == ["text"]  # the earlier result was enough
    seen = upstream.bodies[before]
    earlier = [b for m in seen["messages"] if isinstance(m["content"], list) for b in m["content"]
               if b.get("type") == "tool_result"]  # fmt: skip
    assert "Petoskey, Michigan" in earlier[0]["content"]  # decoded from encrypted_content, shown again


def test_a_forged_token_errors_that_request_only(served: ServerProcess) -> None:
    with make_client(served.base_url) as client:
        first = client.messages.create(  # type: ignore[call-overload]
            model="oa-model", max_tokens=256, tools=WEB_SEARCH,
            messages=[{"role": "user", "content": "When was Claude Shannon born?"}],
        )  # fmt: skip
        blocks = [b.model_dump(exclude_none=True) for b in first.content]
        result = next(b for b in blocks if b["type"] == "web_search_tool_result")
        result["content"][0]["encrypted_content"] = (
            result["content"][0]["encrypted_content"][:-8] + "AAAAAAAA"
        )
        turns = [
            {"role": "user", "content": "When was Claude Shannon born?"},
            {"role": "assistant", "content": blocks},
            {"role": "user", "content": "More?"},
        ]
        results = run(
            client,
            [
                ask("forged", "oa-model", "", tools=WEB_SEARCH, messages=turns),
                ask("fine", "oa-model", "hello"),
            ],
        )
        with pytest.raises(anthropic.BadRequestError, match="encrypted_content"):
            client.messages.create(model="oa-model", max_tokens=64, tools=WEB_SEARCH, messages=turns)  # type: ignore[arg-type]
    forged = results["forged"]
    assert forged.type == "errored" and forged.error.error.type == "invalid_request_error"
    where = f"messages.1.content.{blocks.index(result)}.content.0.encrypted_content"
    assert forged.error.error.message.startswith(where + ": the value was not produced by this server")
    assert results["fine"].type == "succeeded"


def test_pause_turn_then_continue(tmp_path: Path, upstream: ToolUpstream, search_index: Path) -> None:
    proc = start(tmp_path, upstream, search_index, tool_max_iterations="2")
    try:
        with make_client(proc.base_url) as client:
            question = {"role": "user", "content": "always search for the llama farm news"}
            paused = client.messages.create(
                model="oa-model", max_tokens=64, tools=WEB_SEARCH, messages=[question]
            )  # type: ignore[arg-type]
            assert paused.stop_reason == "pause_turn"
            kinds = [b.type for b in paused.content]
            assert kinds == ["server_tool_use", "web_search_tool_result", "server_tool_use"]
            pending = paused.content[-1]
            content = [b.model_dump(exclude_none=True) for b in paused.content]
            again = client.messages.create(  # type: ignore[call-overload]
                model="oa-model", max_tokens=64, tools=WEB_SEARCH,
                messages=[question, {"role": "assistant", "content": content}],
            )  # fmt: skip
            assert again.content[0].type == "web_search_tool_result"
            assert again.content[0].tool_use_id == pending.id  # the pending call ran first
            assert again.usage.server_tool_use.web_search_requests == 2  # it, and one more before the cap
            health = httpx.get(proc.base_url + "/health").json()
            assert health["server_tools"] == {
                "web_search.local": "up",
                "web_fetch": health["server_tools"]["web_fetch"],
                "code_execution": "up",  # the sandbox runs here (test_code_execution.py)
            }
            metrics = httpx.get(proc.base_url + "/metrics").text
            # 1 run before the first pause, 2 in the continuation (the pending one, then one more)
            assert 'batchd_server_tool_calls_total{outcome="ok",tool="web_search"} 3.0' in metrics
    finally:
        assert proc.stop() == 0


def seed_web_search_example(
    base_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[str, Any]:
    """Run the seed's web-search request as written against `base_url`: (what it printed, the message)."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "seed-key")
    client = anthropic.Anthropic(_strict_response_validation=True)
    batch = client.beta.messages.batches.create(
        requests=[
            {
                "custom_id": "request-2",
                "params": {
                    "model": "claude-sonnet-4-5-20250929",
                    "max_tokens": 2048,
                    "web_search": {"type": "enabled"},
                    "messages": [{"role": "user", "content": "What are the latest news?"}],
                },
            },
        ]
    )
    while True:
        batch = client.beta.messages.batches.retrieve(batch.id)
        if batch.processing_status == "ended":
            break
        time.sleep(0.05)
    for response in client.beta.messages.batches.results(batch.id):
        if response.result.type == "succeeded":
            print(f"{response.custom_id}: Success")
            for block in response.result.message.content:
                if block.type == "text":
                    print(f"  Response: {block.text[:100]}...")
        elif response.result.type == "errored":
            print(f"{response.custom_id}: Error - {response.result.error.message}")
    out = capsys.readouterr().out
    [line] = list(client.beta.messages.batches.results(batch.id))
    client.close()
    return out, line.result.message  # type: ignore[union-attr]


def test_seed_web_search_example_on_a_real_model_route(
    served: ServerProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed's first example, as written, with claude-sonnet-4-5-20250929 routed to the
    OpenAI-compatible loopback model (not the simulator)."""
    out, web = seed_web_search_example(served.base_url, monkeypatch, capsys)
    assert "request-2: Success" in out and "Response: According to the search, " in out
    kinds = [b.type for b in web.content]
    assert kinds.index("server_tool_use") + 1 == kinds.index("web_search_tool_result")
    assert web.usage.server_tool_use.web_search_requests == 1
    assert web.content[kinds.index("web_search_tool_result")].content[0].url.startswith("https://")
