"""What libraries built on the SDK rely on, against a real `batchd serve` and the official SDK (strict
validation): structured outputs, stream events that add up to the message, token counting, and
the small fields (`service_tier`, `/v1/models`) — on the simulator and through loopback upstreams
(tests/acceptance/fidelity_upstream.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import anthropic
import httpx
import pydantic
import pytest

from tests.acceptance import fidelity_upstream as fid
from tests.acceptance.conftest import make_client, wait_ended
from tests.acceptance.fidelity_upstream import FidelityUpstream
from tests.acceptance.server import ServerProcess

jsonschema_rs = pytest.importorskip("jsonschema_rs")

MODEL = "claude-fidelity"  # any name the routes leave to the simulator (the SDK warns on deprecated ones)

# Nested objects, arrays of objects, enums, required and optional fields, formats.
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "email": {"type": "string", "format": "email"},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "role": {"type": "string", "enum": ["admin", "editor", "viewer"]},
        "address": {
            "type": "object",
            "properties": {
                "street": {"type": "string"},
                "city": {"type": "string"},
                "zip": {"type": "string"},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "scores": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "label": {"type": "string", "enum": ["speed", "care"]},
                    "value": {"type": "number", "minimum": 0, "maximum": 1},
                    "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                },
                "required": ["label", "value"],
                "additionalProperties": False,
            },
        },
        "active": {"type": "boolean"},
    },
    "required": ["name", "role", "address", "tags"],
    "additionalProperties": False,
}
# What fidelity_upstream.STRUCTURED satisfies.
FORECAST = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "forecast": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"day": {"type": "string"}, "celsius": {"type": "integer"}},
                "required": ["day", "celsius"],
                "additionalProperties": False,
            },
        },
        "unit": {"enum": ["C", "F"]},
    },
    "required": ["city", "forecast", "unit"],
    "additionalProperties": False,
}
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search"}
CODE = {"type": "code_execution_20250825", "name": "code_execution"}
DOCUMENT = {
    "type": "document",
    "source": {"type": "text", "media_type": "text/plain", "data": "The grass is green. The sky is blue."},
    "title": "Colours",
    "citations": {"enabled": True},
}

PLAIN_DOCUMENT = {k: v for k, v in DOCUMENT.items() if k != "citations"}


def fmt(schema: dict[str, Any]) -> dict[str, Any]:
    return {"format": {"type": "json_schema", "schema": schema}}


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def assert_valid(schema: dict[str, Any], text: str) -> Any:
    value = json.loads(text)
    errors = [
        e.message for e in jsonschema_rs.validator_for(schema, validate_formats=True).iter_errors(value)
    ]
    assert not errors, (errors, value)
    return value


class Forecast(pydantic.BaseModel):
    city: str
    days: list[int]
    unit: Literal["C", "F"]
    note: str | None = None


# -- structured outputs on the simulator -------------------------------------------------------


PROMPTS = [
    "Extract the person: Ada Lovelace, admin, lives in London.",
    "Who is Grace Hopper?",
    "Describe a viewer named Alan from Wilmslow",
    "Make up an editor",
    "one more person please",
]


@pytest.mark.parametrize("where", ["output_config", "output_format"])
def test_structured_output_is_json_valid_against_the_schema(client: anthropic.Anthropic, where: str) -> None:
    seen_keys: set[frozenset[str]] = set()
    for prompt in PROMPTS:
        if where == "output_config":
            m = client.messages.create(
                model=MODEL, max_tokens=1024, messages=user(prompt), output_config=fmt(PERSON)
            )  # type: ignore[arg-type]
        else:  # the beta parameter, as older SDKs and libraries (LiteLLM, the AI SDK) send it
            m = client.beta.messages.create(
                model=MODEL,
                max_tokens=1024,
                messages=user(prompt),  # type: ignore[arg-type]
                extra_body={"output_format": {"type": "json_schema", "schema": PERSON}},
                betas=["structured-outputs-2025-11-13"],
            )
        assert [b.type for b in m.content] == ["text"] and m.stop_reason == "end_turn"
        value = assert_valid(PERSON, m.content[0].text)  # type: ignore[union-attr]
        seen_keys.add(frozenset(value))
    assert len(seen_keys) > 1  # optional fields come and go with the request


def test_parse_with_a_pydantic_model(client: anthropic.Anthropic) -> None:
    m = client.messages.parse(
        model=MODEL, max_tokens=512, messages=user("Weather in Paris"), output_format=Forecast
    )
    assert isinstance(m.parsed_output, Forecast)


def test_structured_output_with_thinking_tools_and_a_stream(client: anthropic.Anthropic) -> None:
    kw: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 4096,
        "messages": user("Weather in Paris, please"),
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [WEATHER_TOOL, WEB_SEARCH],  # offered, not named: the answer is the JSON
        "output_config": fmt(FORECAST),
    }
    m = client.messages.create(**kw)
    kinds = [b.type for b in m.content]
    assert kinds == ["thinking", "server_tool_use", "web_search_tool_result", "text"], kinds
    assert_valid(FORECAST, m.content[-1].text)  # type: ignore[union-attr]
    with client.messages.stream(**kw) as stream:
        assert stream.get_final_message().to_dict() == m.to_dict()
    with client.messages.stream(**{**kw, "output_config": {}}, output_format=Forecast) as stream:
        assert isinstance(stream.get_final_message().parsed_output, Forecast)


def test_structured_output_cut_by_max_tokens(client: anthropic.Anthropic) -> None:
    m = client.messages.create(model=MODEL, max_tokens=5, messages=user("Someone"), output_config=fmt(PERSON))  # type: ignore[arg-type]
    assert m.stop_reason == "max_tokens" and m.usage.output_tokens == 5
    assert len(m.content[0].text) <= 20  # type: ignore[union-attr]


def test_structured_output_in_a_batch(client: anthropic.Anthropic) -> None:
    params = {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": user("Extract a person"),
        "output_config": fmt(PERSON),
    }
    batch = client.messages.batches.create(requests=[{"custom_id": "p", "params": params}])  # type: ignore[list-item]
    wait_ended(client, batch.id, 1)
    (line,) = list(client.messages.batches.results(batch.id))
    assert line.result.type == "succeeded", line.result
    message = line.result.message
    assert_valid(PERSON, message.content[0].text)  # type: ignore[union-attr]
    assert message.usage.service_tier == "batch"  # batch results say so; realtime calls "standard"


def test_a_bad_format_is_a_400(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(
            model=MODEL,
            max_tokens=64,
            messages=user("hi"),
            output_config={"format": {"type": "xml"}},  # type: ignore[typeddict-item]
        )
    assert info.value.body["error"]["message"] == "output_config.format.type: Input should be 'json_schema'"  # type: ignore[index]


# -- a streamed call adds up to the message -----------------------------------------------------


SIM_CASES: dict[str, dict[str, Any]] = {
    "text": {"messages": user("Tell me about llamas")},
    "stop_sequence": {"messages": user("Tell me about llamas"), "stop_sequences": ["llamas"]},
    "thinking": {
        "messages": user("Think about llamas"),
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    },
    "tools": {"messages": user("Weather in Paris?"), "tools": [WEATHER_TOOL], "tool_choice": {"type": "any"}},
    "server_tools": {"messages": user("Latest llama news, and compute 2+2"), "tools": [WEB_SEARCH, CODE]},
    "citations": {
        "messages": [{"role": "user", "content": [DOCUMENT, {"type": "text", "text": "Colours?"}]}]
    },
    "refusal": {"messages": user("Do harm @sim:refusal=cyber")},
    "structured": {"messages": user("A person"), "output_config": fmt(PERSON)},
}


def streamed_and_plain(client: anthropic.Anthropic, **kw: Any) -> tuple[Any, Any, list[Any]]:
    """The message rebuilt by the SDK's accumulator from a stream, the plain message, and the raw
    events of a third, identical call."""
    with client.messages.stream(**kw) as stream:
        final = stream.get_final_message()
    plain = client.messages.create(**kw)
    events = list(client.messages.create(**kw, stream=True))
    return final, plain, events


def check_events(events: list[Any], plain: Any) -> None:
    delta = next(e for e in events if e.type == "message_delta")
    usage = plain.usage
    assert delta.usage.input_tokens == usage.input_tokens
    assert delta.usage.output_tokens == usage.output_tokens
    assert delta.usage.cache_read_input_tokens == usage.cache_read_input_tokens
    assert delta.usage.cache_creation_input_tokens == usage.cache_creation_input_tokens
    assert delta.usage.server_tool_use == usage.server_tool_use
    assert delta.delta.stop_details == plain.stop_details
    assert delta.delta.container == plain.container


@pytest.mark.parametrize("case", sorted(SIM_CASES))
def test_stream_adds_up_to_the_message_on_the_simulator(client: anthropic.Anthropic, case: str) -> None:
    kw = {"model": MODEL, "max_tokens": 2048, **SIM_CASES[case]}
    final, plain, events = streamed_and_plain(client, **kw)
    assert final.to_dict() == plain.to_dict()
    assert final.to_dict(exclude_unset=False) == plain.to_dict(exclude_unset=False)
    check_events(events, plain)
    with client.beta.messages.stream(**kw) as stream:  # the beta accumulator (pydantic-ai's)
        assert stream.get_final_message().to_dict() == client.beta.messages.create(**kw).to_dict()
    assert plain.usage.service_tier == "standard"
    if case == "server_tools":
        assert plain.usage.server_tool_use.web_search_requests == 1 and plain.container is not None
    if case == "refusal":
        assert plain.stop_details.category == "cyber"
    if case == "citations":
        assert any(getattr(b, "citations", None) for b in plain.content)


# -- through a loopback upstream -----------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[FidelityUpstream]:
    up = FidelityUpstream().start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def routed(upstream: FidelityUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("fidelity")
    config = data / "batchd.toml"
    config.write_text(
        f'[web_search]\nprovider = "searxng"\nsearxng_url = "{upstream.url}"\n'
        f'[[routes]]\nmodel = "oa-model"\nbackend = "openai"\nbase_url = "{upstream.url}/v1"\n'
        f'[[routes]]\nmodel = "fid-*"\nbackend = "openai"\nbase_url = "{upstream.url}/v1"\n'
        f'[[routes]]\nmodel = "an-count"\nbackend = "anthropic"\nbase_url = "{upstream.url}"\n'
        'upstream_model = "up-counter"\n'
        f'[[routes]]\nmodel = "an-*"\nbackend = "anthropic"\nbase_url = "{upstream.url}"\n'
        'upstream_model = "up-any"\n'
    )
    proc = ServerProcess(data / "d", {"BATCHD_CONFIG": str(config)}).start()
    yield proc
    proc.stop()


UPSTREAM_CASES: dict[str, dict[str, Any]] = {
    "text": {"messages": user("hello upstream")},
    "thinking": {"messages": user("think hard"), "thinking": {"type": "enabled", "budget_tokens": 1024}},
    "tools": {"messages": user("weather call=get_weather"), "tools": [WEATHER_TOOL]},
    "server_tools": {"messages": user("When was Claude Shannon born?"), "tools": [WEB_SEARCH]},
    "structured": {"messages": user("forecast"), "output_config": fmt(FORECAST)},
}


def without_random_ids(message: dict[str, Any]) -> dict[str, Any]:
    """The message with the ids batchd's server-tool loop draws at random (`srvtoolu_…`), and the
    encrypted fields made with a fresh nonce, replaced by placeholders in order of appearance."""
    text = json.dumps(message)
    seen: dict[str, str] = {}
    for key in ("srvtoolu_", '"encrypted_content": "', '"encrypted_index": "'):
        start = 0
        while (i := text.find(key, start)) >= 0:
            j = i + len(key)
            end = min(p for p in (text.find('"', j), len(text)) if p >= 0)
            value = text[j:end]
            seen.setdefault(value, f"<{len(seen)}>")
            start = end
    for value, mark in seen.items():
        text = text.replace(value, mark)
    result: dict[str, Any] = json.loads(text)
    return result


@pytest.mark.parametrize("case", sorted(UPSTREAM_CASES))
def test_stream_adds_up_to_the_message_through_an_openai_upstream(routed: ServerProcess, case: str) -> None:
    with make_client(routed.base_url) as client:
        final, plain, events = streamed_and_plain(
            client, model="oa-model", max_tokens=2048, **UPSTREAM_CASES[case]
        )
    assert without_random_ids(final.to_dict()) == without_random_ids(plain.to_dict())
    assert without_random_ids(final.to_dict(exclude_unset=False)) == without_random_ids(
        plain.to_dict(exclude_unset=False)
    )
    check_events(events, plain)
    assert plain.usage.cache_read_input_tokens == fid.CACHED * (2 if case == "server_tools" else 1)
    assert plain.usage.service_tier == "standard"
    if case == "server_tools":
        assert [b.type for b in plain.content] == ["server_tool_use", "web_search_tool_result", "text"]
        assert plain.usage.server_tool_use.web_search_requests == 1
        starts = [e.content_block.type for e in events if e.type == "content_block_start"]
        assert starts == ["server_tool_use", "web_search_tool_result", "text"]
    texts = [e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta"]
    if case in ("text", "server_tools"):  # the upstream's chunks, word by word, as they came
        assert len(texts) >= 3 and "".join(texts) == plain.content[-1].text


def test_structured_output_reaches_an_openai_upstream(
    routed: ServerProcess, upstream: FidelityUpstream
) -> None:
    with make_client(routed.base_url) as client:
        m = client.messages.create(
            model="oa-model", max_tokens=256, messages=user("forecast, beta"), output_config=fmt(FORECAST)
        )  # type: ignore[arg-type]
        b = client.beta.messages.create(
            model="oa-model",
            max_tokens=256,
            messages=user("forecast, old beta"),  # type: ignore[arg-type]
            extra_body={"output_format": {"type": "json_schema", "schema": FORECAST}},
            betas=["structured-outputs-2025-11-13"],
        )
    for message in (m, b):
        assert [x.type for x in message.content] == ["text"]
        assert assert_valid(FORECAST, message.content[0].text) == fid.STRUCTURED  # type: ignore[union-attr]
    sent = [c["response_format"] for c in upstream.received("/v1/chat/completions") if "response_format" in c]
    assert (
        sent[-2:]
        == [{"type": "json_schema", "json_schema": {"name": "output", "schema": FORECAST, "strict": True}}]
        * 2
    )


# -- count_tokens --------------------------------------------------------------------------------


def test_count_tokens_on_the_simulator_matches_usage(client: anthropic.Anthropic) -> None:
    kw: dict[str, Any] = {
        "model": MODEL,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": [PLAIN_DOCUMENT, {"type": "text", "text": "Sky colour?"}]}],
        "tools": [WEATHER_TOOL],
        "output_config": fmt(FORECAST),
    }
    created = client.messages.create(max_tokens=256, **kw)
    counted = client.messages.count_tokens(**kw)
    beta = client.beta.messages.count_tokens(**kw)
    assert counted.input_tokens == beta.input_tokens == created.usage.input_tokens > 20


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": MODEL}, "messages: Field required"),
        ({"messages": user("hi")}, "model: Field required"),
        ({"model": MODEL, "messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
        (
            {"model": MODEL, "messages": user("hi"), "output_format": {"type": "json_schema"}},
            "output_format.schema: Field required",
        ),
    ],
)
def test_count_tokens_refuses_bad_input_in_the_envelope(
    client: anthropic.Anthropic, body: dict[str, Any], message: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client.post("/v1/messages/count_tokens", body=body, cast_to=anthropic.types.MessageTokensCount)
    error = info.value.body
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert error["error"]["message"].startswith(message), error  # type: ignore[index]
    assert error["request_id"] == info.value.response.headers["request-id"]  # type: ignore[index]


def test_count_tokens_through_the_upstreams(routed: ServerProcess, upstream: FidelityUpstream) -> None:
    kw: dict[str, Any] = {"system": "Be brief.", "messages": user("count me"), "tools": [WEATHER_TOOL]}
    with make_client(routed.base_url) as client:
        openai = client.messages.count_tokens(model="oa-model", **kw)
        asked = upstream.received("/v1/chat/completions")[-1]
        assert asked["max_tokens"] == 1 and asked["tools"][0]["function"]["name"] == "get_weather"
        assert openai.input_tokens == fid.prompt_tokens_for(asked)  # cached ones included
        anthropic_ = client.beta.messages.count_tokens(model="an-count", **kw)
        assert anthropic_.input_tokens == fid.COUNT
    sent = upstream.received("/v1/messages/count_tokens")[-1]
    assert sent == {"model": "up-counter", **kw}  # no max_tokens: the upstream's count sees the request


# -- service tier and models --------------------------------------------------------------------


def test_models_lists_names_not_globs(routed: ServerProcess) -> None:
    with make_client(routed.base_url) as client:
        ids = [m.id for m in client.models.list().data]
        # fid-*'s upstream lists its models; an-* maps every name to one upstream model: left out.
        assert ids == ["oa-model", "fid-alpha", "fid-beta", "an-count"]
        assert client.models.retrieve("fid-alpha").display_name == "fid-alpha → openai (route fid-*)"
        assert client.models.retrieve("an-zzz").id == "an-zzz"


def test_openapi_describes_count_tokens(server: ServerProcess) -> None:
    doc = httpx.get(server.base_url + "/openapi.json").json()
    op = doc["paths"]["/v1/messages/count_tokens"]["post"]
    assert op["operationId"] == "countMessageTokens"
