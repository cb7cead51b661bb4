"""`POST /v1/messages` with `stream: true` streams the upstream's tokens as they arrive: a real
`batchd serve`, a slow loopback upstream on a real socket (tests/acceptance/stream_upstream.py),
the official SDK (strict validation) as the client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.acceptance.conftest import make_client
from tests.acceptance.server import ServerProcess
from tests.acceptance.stream_upstream import MODEL_UP, StreamUpstream

WEATHER = {
    "name": "get_weather",
    "description": "Weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[StreamUpstream]:
    up = StreamUpstream().start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def served(upstream: StreamUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("streaming")
    config = data / "batchd.toml"
    config.write_text(
        f'[[routes]]\nmodel = "oa-*"\nbackend = "openai"\nbase_url = "{upstream.url}/v1"\n'
        f'[[routes]]\nmodel = "an-*"\nbackend = "anthropic"\nbase_url = "{upstream.url}"\n'
        f'upstream_model = "{MODEL_UP}"\n'
    )
    proc = ServerProcess(data / "d", {"BATCHD_CONFIG": str(config)}).start()
    yield proc
    proc.stop()


@pytest.fixture
def client(served: ServerProcess, upstream: StreamUpstream) -> Iterator[anthropic.Anthropic]:
    upstream.reset()
    with make_client(served.base_url, timeout=30) as c:
        yield c


def ask(model: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": text}], **extra}


def test_the_first_delta_reaches_the_client_before_the_upstream_has_finished(
    client: anthropic.Anthropic, upstream: StreamUpstream
) -> None:
    """The upstream holds the rest of its answer until the test has seen the first delta: a
    server that waited for the whole answer would never show it (the upstream gives up after 10 s
    and `released` stays False)."""
    seen: list[str] = []
    with client.messages.stream(**ask("oa-gate", "gate the words please")) as stream:  # type: ignore[arg-type]
        for event in stream:
            seen.append(event.type)
            if event.type == "content_block_delta" and not upstream.gate.is_set():
                assert not upstream.finished.is_set()
                upstream.gate.set()
        final = stream.get_final_message()
    assert upstream.released and upstream.finished.is_set()
    assert seen[:3] == ["message_start", "content_block_start", "content_block_delta"]
    assert final.content[0].text == "echo: gate the words please"  # type: ignore[union-attr]
    sent = upstream.bodies[-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    plain = client.messages.create(**ask("oa-gate", "gate the words please"))  # type: ignore[arg-type]
    assert final.to_dict() == plain.to_dict()  # the gate opens at once: no delta waits for it


def test_a_tool_call_streams_its_arguments(client: anthropic.Anthropic) -> None:
    kw = ask("oa-tools", "weather call=get_weather", tools=[WEATHER])
    events = list(client.messages.create(**kw, stream=True))  # type: ignore[call-overload]
    partial = [e.delta.partial_json for e in events if e.type == "content_block_delta"]
    assert len(partial) > 3 and "".join(partial) == '{"city": "Paris"}'
    with client.messages.stream(**kw) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    plain = client.messages.create(**kw)  # type: ignore[arg-type]
    assert final.to_dict() == plain.to_dict()
    assert plain.stop_reason == "tool_use" and plain.content[0].input == {"city": "Paris"}  # type: ignore[union-attr]


def test_an_anthropic_upstream_is_passed_through_under_the_asked_name(
    client: anthropic.Anthropic, upstream: StreamUpstream
) -> None:
    kw = ask("an-model", "hello there")
    events = list(client.messages.create(**kw, stream=True))  # type: ignore[call-overload]
    assert upstream.bodies[-1]["stream"] is True and upstream.bodies[-1]["model"] == MODEL_UP
    start = events[0]
    assert start.type == "message_start" and start.message.model == "an-model"
    assert start.message.usage.service_tier == "standard"
    texts = [e.delta.text for e in events if e.type == "content_block_delta"]
    assert texts == ["echo:", " hello", " there"]  # as the upstream sent them
    with client.messages.stream(**kw) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    assert final.to_dict() == client.messages.create(**kw).to_dict()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("word", "kind", "says"), [("error", "api_error", "ran out of memory"), ("drop", "api_error", "")]
)
def test_an_upstream_failure_mid_stream_is_an_error_event(
    client: anthropic.Anthropic, word: str, kind: str, says: str
) -> None:
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as info:
        for event in client.messages.create(**ask("oa-x", f"{word} now"), stream=True):  # type: ignore[call-overload]
            seen.append(event.type)
    assert "content_block_delta" in seen  # the stream had begun: an error event, not an HTTP error
    body: Any = info.value.body
    assert body["type"] == "error" and body["error"]["type"] == kind
    assert says in body["error"]["message"]


def test_an_upstream_error_before_the_first_byte_is_an_http_error(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as info:
        list(client.messages.create(**ask("oa-x", "fail=429 please"), stream=True))  # type: ignore[call-overload]
    assert info.value.status_code == 429
    assert info.value.response.headers["request-id"]
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


def test_a_client_that_goes_away_closes_the_upstream_call(
    served: ServerProcess, upstream: StreamUpstream
) -> None:
    upstream.reset()
    body = ask("oa-x", "forever please")
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    with httpx.stream(
        "POST", served.base_url + "/v1/messages", json={**body, "stream": True}, headers=headers
    ) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("event: content_block_delta"):
                break
    started = time.monotonic()
    assert upstream.closed.wait(10), "the upstream call was still open 10 s after the client left"
    assert not upstream.finished.is_set() and time.monotonic() - started < 10


def test_an_upstream_that_refuses_stream_options_is_asked_again_without(
    client: anthropic.Anthropic, upstream: StreamUpstream
) -> None:
    with client.messages.stream(**ask("oa-x", "strict server")) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    assert final.content[0].text == "echo: strict server"  # type: ignore[union-attr]
    asked = [b for b in upstream.bodies if b["messages"][-1]["content"] == "strict server"]
    assert ["stream_options" in b for b in asked] == [True, False]
