"""The OpenAI wire's realtime endpoints on the simulator, through the official `openai` SDK (sync and
async, strict response validation) against a real `batchd serve`: chat and text completions,
embeddings, streams read by the SDK's own accumulators, errors, workspaces, and realtime priority
on a route busy with batch work."""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable

import httpx
import openai
import pytest

from tests.acceptance.conftest import make_client, simple_request
from tests.acceptance.openai_wire import MODEL, make_async_openai, make_openai
from tests.acceptance.server import ServerProcess
from tests.acceptance.test_scheduling import wait_succeeded

HELLO = [{"role": "user", "content": "Say something about the sea"}]


def lax_openai(base_url: str) -> openai.OpenAI:
    """The SDK without strict validation, where its types refuse what OpenAI itself sends."""
    return openai.OpenAI(base_url=base_url + "/v1", api_key="test-key", max_retries=0)


def test_a_chat_completion(server: ServerProcess) -> None:
    with make_openai(server.base_url) as client:
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO, max_tokens=1024)
        completion = raw.parse()
    assert raw.headers["x-request-id"].startswith("req_")
    assert completion._request_id == raw.headers["x-request-id"]
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_a_text_completion(server: ServerProcess) -> None:
    with make_openai(server.base_url) as client:
        completion = client.completions.create(model=MODEL, prompt=["one", "two"], max_tokens=1024)
    assert completion.object == "text_completion"
    assert [c.index for c in completion.choices] == [0, 1]
    assert all(c.text for c in completion.choices)


def test_embeddings_with_dimensions_in_float_and_base64(server: ServerProcess) -> None:
    with make_openai(server.base_url) as client:
        floats = client.embeddings.create(
            model="text-embedding-3-small", input=["a", "b c"], dimensions=8, encoding_format="float"
        )
    # The SDK asks for base64 when no format is given and decodes it, after validating the answer:
    # its strict validation (a list of floats) would refuse what OpenAI itself sends.
    with lax_openai(server.base_url) as lax:
        decoded = lax.embeddings.create(model="text-embedding-3-small", input=["a", "b c"], dimensions=8)
    # base64 answers fail this SDK's strict validation (its type says floats): read over plain HTTP
    raw = httpx.post(
        server.base_url + "/v1/embeddings",
        json={"model": "text-embedding-3-small", "input": "a", "dimensions": 8, "encoding_format": "base64"},
        headers={"authorization": "Bearer test-key"},
    )
    assert [len(d.embedding) for d in floats.data] == [8, 8]
    assert floats.model == "text-embedding-3-small"
    assert floats.usage.prompt_tokens == 3
    for f, d in zip(floats.data, decoded.data, strict=True):
        assert d.embedding == pytest.approx(f.embedding, abs=1e-6)
    assert raw.status_code == 200 and raw.headers["x-request-id"].startswith("req_")
    sent = raw.json()["data"][0]["embedding"]
    assert isinstance(sent, str)
    assert list(struct.unpack("<8f", base64.b64decode(sent))) == pytest.approx(
        floats.data[0].embedding, abs=1e-6
    )


def test_a_chat_stream_reads_as_the_whole_answer(server: ServerProcess) -> None:
    with make_openai(server.base_url) as client:
        whole = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=1024)
        stream = client.chat.completions.create(
            model=MODEL, messages=HELLO, max_tokens=1024, stream=True, stream_options={"include_usage": True}
        )
        events = list(stream)
        with client.chat.completions.stream(model=MODEL, messages=HELLO, max_tokens=1024) as helper:
            final = helper.get_final_completion()
    assert all(e.object == "chat.completion.chunk" and e.model == MODEL for e in events)
    assert events[0].choices[0].delta.role == "assistant"
    text = "".join(e.choices[0].delta.content or "" for e in events if e.choices)
    assert len([e for e in events if e.choices and e.choices[0].delta.content]) > 1  # word by word
    assert text == whole.choices[0].message.content
    assert [e.choices[0].finish_reason for e in events if e.choices][-1] == whole.choices[0].finish_reason
    assert events[-1].choices == [] and events[-1].usage == whole.usage
    assert final.choices[0].message.content == whole.choices[0].message.content
    assert final.choices[0].finish_reason == whole.choices[0].finish_reason


def test_a_tool_call_streams_to_the_helper(server: ServerProcess) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
            },
        }
    ]
    with make_openai(server.base_url) as client:
        whole = client.chat.completions.create(
            model=MODEL, messages=HELLO, max_tokens=1024, tools=tools, tool_choice="required"
        )
        with client.chat.completions.stream(
            model=MODEL, messages=HELLO, max_tokens=1024, tools=tools, tool_choice="required"
        ) as helper:
            final = helper.get_final_completion()
    expected = whole.choices[0].message.tool_calls
    assert expected
    got = final.choices[0].message.tool_calls
    assert got is not None
    assert [(c.id, c.function.name, c.function.arguments) for c in got] == [
        (c.id, c.function.name, c.function.arguments)
        for c in expected  # type: ignore[union-attr]
    ]
    assert final.choices[0].finish_reason == "tool_calls"


def test_a_text_completion_streams(server: ServerProcess) -> None:
    # Not strict: the SDK's Completion type says finish_reason is never null, as every chunk but the
    # last has it (OpenAI's own streams too).
    with lax_openai(server.base_url) as client:
        whole = client.completions.create(model=MODEL, prompt="the sea", max_tokens=8)
        events = list(client.completions.create(model=MODEL, prompt="the sea", max_tokens=8, stream=True))
    assert "".join(c.text for e in events for c in e.choices) == whole.choices[0].text
    assert events[-1].choices[0].finish_reason == whole.choices[0].finish_reason


async def test_the_async_client(server: ServerProcess) -> None:
    async with make_async_openai(server.base_url) as client:
        whole = await client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=1024)
        stream = await client.chat.completions.create(
            model=MODEL, messages=HELLO, max_tokens=1024, stream=True
        )
        text = "".join([e.choices[0].delta.content or "" async for e in stream if e.choices])
        async with client.chat.completions.stream(model=MODEL, messages=HELLO, max_tokens=1024) as helper:
            final = await helper.get_final_completion()
        vectors = await client.embeddings.create(model="e", input="x", dimensions=4, encoding_format="float")
    assert text == whole.choices[0].message.content == final.choices[0].message.content
    assert len(vectors.data[0].embedding) == 4


def test_errors_are_openais_envelope(server: ServerProcess) -> None:
    url = server.base_url + "/v1/chat/completions"
    headers = {"authorization": "Bearer test-key", "content-type": "application/json"}
    bad_json = httpx.post(url, content=b"{nope", headers=headers)
    assert bad_json.status_code == 400
    assert bad_json.headers["x-request-id"].startswith("req_")
    error = bad_json.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    no_model = httpx.post(url, json={"messages": HELLO}, headers=headers)
    assert no_model.status_code == 400
    assert no_model.json()["error"]["param"] == "model"
    assert no_model.json()["error"]["code"] == "missing_required_parameter"
    with make_openai(server.base_url) as client:
        with pytest.raises(openai.BadRequestError) as bad_dims:
            client.embeddings.create(model="e", input="x", dimensions=0)
        with pytest.raises(
            openai.BadRequestError
        ) as simulated:  # the simulator's HTTP error, as an upstream's
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "@sim:error=invalid_request_error"}]
            )
        with pytest.raises(openai.BadRequestError) as no_stream:
            client.embeddings.create(model="e", input="x", extra_body={"stream": True})
    assert bad_dims.value.param == "dimensions"
    assert simulated.value.type == "invalid_request_error" and simulated.value.request_id
    assert no_stream.value.param == "stream"


def test_keys_and_workspaces(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(api_keys="key-a:team-a")
    with (
        make_openai(srv.base_url, api_key="wrong") as client,
        pytest.raises(openai.AuthenticationError) as denied,
    ):
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert denied.value.code == "invalid_api_key"
    with make_openai(srv.base_url, api_key="key-a") as client:
        assert client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=8).choices


def test_a_realtime_chat_completion_goes_before_the_batch_calls_queued(
    server_factory: Callable[..., ServerProcess],
) -> None:
    # As tests/acceptance/test_scheduling.py does for /v1/messages: the route takes 2 calls at once,
    # the engine holds 64 batch calls ready for it.
    routes = '[{"model": "sim-*", "concurrency": 2}]'
    srv = server_factory(routes=routes, sim_latency="100ms", concurrency="64")
    with make_client(srv.base_url) as anthropic_client, make_openai(srv.base_url) as client:
        requests = [simple_request(f"r{i}", model="sim-x") for i in range(400)]
        batch = anthropic_client.messages.batches.create(requests=requests)
        before = wait_succeeded(anthropic_client, batch.id, 4)
        with client.chat.completions.stream(model="sim-x", messages=HELLO, max_tokens=1024) as stream:
            streamed = stream.get_final_completion()
        completion = client.chat.completions.create(model="sim-x", messages=HELLO, max_tokens=1024)
        after = wait_succeeded(anthropic_client, batch.id, 0)
        assert completion.choices and streamed.choices
        # Behind the ~60 batch calls queued: 30 route turns each; first, one or two turns each.
        assert after - before < 30, (before, after)
        anthropic_client.messages.batches.cancel(batch.id)
