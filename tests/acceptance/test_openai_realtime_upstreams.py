"""The OpenAI wire's realtime endpoints on real loopback upstreams, through the official `openai` SDK
against a real `batchd serve`: an OpenAI-compatible upstream gets the body untouched but `model`,
its stream arrives event by event (gated: the upstream holds the rest of its answer until the
client has the first chunk), its HTTP errors pass with their envelope; an Anthropic upstream's
answer is translated, and streamed as chunks built from it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import openai
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from tests.acceptance.openai_wire import make_async_openai, make_openai
from tests.acceptance.server import ServerProcess, ThreadedApp
from tests.integration.backends_upstream import Upstream

HELLO = [{"role": "user", "content": "Hello there"}]
GATE_WAIT = 20.0  # seconds the gated upstream waits for the client's first chunk before going on


class GatedUpstream:
    """An OpenAI-compatible upstream whose stream sends two chunks, then waits for `gate` (set by
    the test once its client holds the first content chunk) before the rest."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.opened_in_time: bool | None = None  # whether the gate opened before the upstream went on
        self.bodies: list[dict[str, Any]] = []
        self.app = ThreadedApp(Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])]))

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choices = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        data = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "served-model"}
        return b"data: " + orjson.dumps({**data, "choices": choices, **extra}) + b"\n\n"

    async def chat(self, request: Request) -> StreamingResponse:
        body = orjson.loads(await request.body())
        self.bodies.append(body)

        async def events() -> AsyncIterator[bytes]:
            yield self.chunk({"role": "assistant", "content": ""})
            yield self.chunk({"content": "Hello"})
            self.opened_in_time = await asyncio.to_thread(self.gate.wait, GATE_WAIT)
            yield self.chunk({"content": " world"})
            yield self.chunk({}, "stop")
            usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
            yield b"data: " + orjson.dumps({"id": "chatcmpl-up", "object": "chat.completion.chunk",
                                            "created": 1, "model": "served-model", "choices": [],
                                            "usage": usage}) + b"\n\n"  # fmt: skip
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    up = Upstream().start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def gated() -> Iterator[GatedUpstream]:
    up = GatedUpstream()
    up.app.serve()
    yield up
    up.app.stop()


@pytest.fixture
def srv(
    server_factory: Callable[..., ServerProcess], upstream: Upstream, gated: GatedUpstream
) -> ServerProcess:
    routes = [
        {
            "model": "gpt-*",
            "backend": "openai",
            "base_url": upstream.url + "/v1",
            "upstream_model": "served-model",
        },
        {
            "model": "gated-*",
            "backend": "openai",
            "base_url": gated.app.url + "/v1",
            "upstream_model": "served-model",
        },
        {"model": "slow-*", "backend": "openai", "base_url": gated.app.url + "/v1", "timeout": "1s"},
        {"model": "held-*", "backend": "openai", "base_url": gated.app.url + "/v1", "concurrency": 1},
        {
            "model": "claude-*",
            "backend": "anthropic",
            "base_url": upstream.url,
            "upstream_model": "claude-real",
        },
    ]
    return server_factory(routes=orjson.dumps(routes).decode(), max_attempts="1")


def test_the_body_passes_untouched_but_its_model(srv: ServerProcess, upstream: Upstream) -> None:
    # Not strict: this upstream's answer lacks `created`, and batchd passes it as it is.
    with openai.OpenAI(base_url=srv.base_url + "/v1", api_key="test-key", max_retries=0) as client:
        completion = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "untouched-1"}], max_tokens=7, seed=3,
            extra_body={"top_k": 5, "chat_template_kwargs": {"x": [1, 2]}},
        )  # fmt: skip
        vectors = client.embeddings.create(model="gpt-embed", input=["a", "bb"], encoding_format="float")
    path, _, body = next(c for c in upstream.calls if "untouched-1" in orjson.dumps(c[2]).decode())
    assert path == "/v1/chat/completions"
    assert body == {
        "model": "served-model",
        "messages": [{"role": "user", "content": "untouched-1"}],
        "max_tokens": 7,
        "seed": 3,
        "top_k": 5,
        "chat_template_kwargs": {"x": [1, 2]},
    }
    assert completion.choices[0].message.content == "echo: untouched-1"
    assert completion.model == "gpt-4o"  # the name asked for, not the upstream's
    assert completion.usage is not None and completion.usage.prompt_tokens == 10
    assert [d.embedding for d in vectors.data] == [[1.0, 1.0], [2.0, 1.0]]


def test_an_upstream_stream_arrives_chunk_by_chunk(srv: ServerProcess, gated: GatedUpstream) -> None:
    gated.gate.clear()
    got: list[Any] = []
    with make_openai(srv.base_url) as client:
        stream = client.chat.completions.create(
            model="gated-1",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"n": 1},
        )
        for event in stream:
            got.append(event)
            if event.choices and event.choices[0].delta.content:
                gated.gate.set()  # the upstream sends the rest only now
    assert gated.opened_in_time is True, (
        "the first chunk reached the client only once the upstream had finished"
    )
    assert gated.bodies[-1]["model"] == "served-model"
    assert gated.bodies[-1]["stream"] is True and gated.bodies[-1]["stream_options"] == {
        "include_usage": True
    }
    assert all(e.model == "gated-1" for e in got)
    assert "".join(e.choices[0].delta.content or "" for e in got if e.choices) == "Hello world"
    assert got[-1].usage is not None and got[-1].usage.total_tokens == 5


def test_the_stream_helper_reads_an_upstream_stream(srv: ServerProcess, gated: GatedUpstream) -> None:
    gated.gate.set()
    with (
        make_openai(srv.base_url) as client,
        client.chat.completions.stream(model="gated-2", messages=HELLO) as s,
    ):
        final = s.get_final_completion()
    assert final.choices[0].message.content == "Hello world"
    assert final.model == "gated-2"


def test_an_upstream_error_passes_with_its_envelope(srv: ServerProcess) -> None:
    with make_openai(srv.base_url) as client:
        for stream in (False, True):
            with pytest.raises(openai.BadRequestError) as caught:
                client.chat.completions.create(
                    model="gpt-4o",
                    messages=[{"role": "user", "content": f"fail=400x1 {stream}"}],
                    stream=stream,
                )
            assert caught.value.status_code == 400
            assert isinstance(caught.value.body, dict)
            assert caught.value.body["message"] == "injected 400 on call 1"
            assert caught.value.type == "invalid_request_error"
            assert caught.value.request_id is not None


def test_an_anthropic_upstream_is_translated_and_streamed(srv: ServerProcess, upstream: Upstream) -> None:
    with make_openai(srv.base_url) as client:
        whole = client.chat.completions.create(model="claude-x", messages=HELLO, max_tokens=64)
        with client.chat.completions.stream(model="claude-x", messages=HELLO, max_tokens=64) as s:
            final = s.get_final_completion()
        with pytest.raises(openai.BadRequestError) as refused:
            client.completions.create(model="claude-x", prompt="hi")
    assert whole.model == "claude-x" and whole.choices[0].message.content
    assert final.choices[0].message.content == whole.choices[0].message.content
    assert upstream.calls[-1][0] == "/v1/messages" and upstream.calls[-1][2]["model"] == "claude-real"
    assert "anthropic" in refused.value.message and refused.value.param == "model"


def test_a_stream_the_client_drops_gives_its_slot_back(srv: ServerProcess, gated: GatedUpstream) -> None:
    gated.gate.clear()
    with make_openai(srv.base_url, timeout=15.0) as client:
        stream = client.chat.completions.create(model="held-1", messages=HELLO, stream=True)
        assert next(iter(stream)).choices[0].delta.role == "assistant"
        stream.close()  # mid-stream: the upstream still holds the rest
        gated.gate.set()
        # The route takes one call at once: a slot kept by the dropped stream would stall this one.
        again = list(client.chat.completions.create(model="held-2", messages=HELLO, stream=True))
    assert "".join(e.choices[0].delta.content or "" for e in again if e.choices) == "Hello world"
    assert gated.bodies[-1]["model"] == "held-2"  # no upstream_model: the name as it came


def test_a_stream_cut_short_ends_with_an_error_event(srv: ServerProcess, gated: GatedUpstream) -> None:
    gated.gate.clear()  # the upstream holds its rest past the route's 1 s timeout
    got: list[Any] = []
    try:
        with make_openai(srv.base_url) as client, pytest.raises(openai.APIError) as caught:
            for event in client.chat.completions.create(model="slow-1", messages=HELLO, stream=True):
                got.append(event)
    finally:
        gated.gate.set()
    assert "".join(e.choices[0].delta.content or "" for e in got) == "Hello"  # what came before
    assert "did not answer within 1s" in caught.value.message


async def test_the_async_client_reads_an_upstream_stream(srv: ServerProcess, gated: GatedUpstream) -> None:
    gated.gate.set()
    async with make_async_openai(srv.base_url) as client:
        stream = await client.chat.completions.create(model="gated-3", messages=HELLO, stream=True)
        got = [e async for e in stream]
        async with client.chat.completions.stream(model="gated-4", messages=HELLO) as helper:
            final = await helper.get_final_completion()
    assert "".join(e.choices[0].delta.content or "" for e in got if e.choices) == "Hello world"
    assert final.choices[0].message.content == "Hello world" and final.model == "gated-4"


def test_an_upstream_that_answers_whole_is_sent_as_chunks(srv: ServerProcess, upstream: Upstream) -> None:
    with make_openai(srv.base_url) as client:  # this upstream answers JSON even when asked to stream
        events = list(client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True))
    assert upstream.calls[-1][2]["stream"] is True
    assert all(e.model == "gpt-4o" for e in events)
    assert "".join(e.choices[0].delta.content or "" for e in events if e.choices) == "echo: Hello there"
    assert events[-1].choices[0].finish_reason == "stop"
