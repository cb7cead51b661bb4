"""The simulator's OpenAI endpoints: chat and text completions, deterministic embeddings."""

from __future__ import annotations

import base64
import json
import math
import re
import struct

import pytest
from openai.types import Completion, CreateEmbeddingResponse
from openai.types.chat import ChatCompletion

from batchd import exceptions
from batchd.backends import endpoints
from batchd.backends.simulator import SimulatedBackend

SIM = endpoints.for_backend(SimulatedBackend())


def call(endpoint: str, **body: object) -> dict[str, object]:
    assert SIM.instant is not None
    response, pause = SIM.instant(endpoint, {"model": "m", **body}, 1)
    assert pause == 0 and response["status_code"] == 200
    body_out = response["body"]
    assert isinstance(body_out, dict)
    return body_out


def test_chat_completions_are_deterministic_and_parse_with_the_sdk() -> None:
    first = call(endpoints.CHAT, messages=[{"role": "user", "content": "tell me @sim:tokens=7"}])
    again = call(endpoints.CHAT, messages=[{"role": "user", "content": "tell me @sim:tokens=7"}])
    parsed = ChatCompletion.model_validate(first)
    assert parsed.usage is not None and parsed.usage.completion_tokens == 7
    assert first["choices"] == again["choices"]


def test_reasoning_effort_thinks_and_counts_reasoning_tokens() -> None:
    done = call(
        endpoints.CHAT,
        messages=[{"role": "user", "content": "why?"}],
        reasoning_effort="low",
        max_tokens=3000,
    )
    message = done["choices"][0]["message"]
    assert message["reasoning_content"] and message["content"]
    usage = done["usage"]
    assert 0 < usage["completion_tokens_details"]["reasoning_tokens"] < usage["completion_tokens"]
    assert len(message["reasoning_content"].split()) == usage["completion_tokens_details"]["reasoning_tokens"]


def test_text_completions_default_to_16_tokens_one_choice_per_prompt() -> None:
    done = Completion.model_validate(call(endpoints.COMPLETIONS, prompt=["Once upon", "In a land far away"]))
    assert done.object == "text_completion" and [c.index for c in done.choices] == [0, 1]
    assert done.usage is not None and done.usage.completion_tokens <= 32
    assert all(c.finish_reason in ("stop", "length") for c in done.choices)
    with pytest.raises(exceptions.InvalidLine) as caught:
        call(endpoints.COMPLETIONS, prompt="x", echo=True)
    assert caught.value.param == "echo"


def test_embeddings_are_deterministic_unit_vectors_with_dimensions_and_base64() -> None:
    body = call(endpoints.EMBEDDINGS, input=["the cat sat", "a dog"], dimensions=64)
    parsed = CreateEmbeddingResponse.model_validate(body)
    assert parsed.usage.prompt_tokens == 5 and parsed.usage.total_tokens == 5
    cat, dog = (d.embedding for d in parsed.data)
    assert len(cat) == 64 and math.isclose(sum(v * v for v in cat), 1.0, rel_tol=1e-9)
    assert cat != dog
    assert call(endpoints.EMBEDDINGS, input="the cat sat", dimensions=64)["data"][0]["embedding"] == cat
    # a shorter vector is the longer one's prefix, renormalised
    short = call(endpoints.EMBEDDINGS, input="the cat sat", dimensions=8)["data"][0]["embedding"]
    norm = math.sqrt(sum(v * v for v in cat[:8]))
    assert short == pytest.approx([v / norm for v in cat[:8]])
    encoded = call(endpoints.EMBEDDINGS, input="the cat sat", dimensions=64, encoding_format="base64")
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    assert list(struct.unpack("<64f", raw)) == pytest.approx(cat, rel=1e-6)
    assert len(call(endpoints.EMBEDDINGS, input="x")["data"][0]["embedding"]) == 1536
    with pytest.raises(exceptions.InvalidLine):
        call(endpoints.EMBEDDINGS, input="x", dimensions=0)


def test_a_simulated_http_error_keeps_its_status_with_an_openai_envelope() -> None:
    with pytest.raises(exceptions.UpstreamStatus) as caught:
        call(endpoints.CHAT, messages=[{"role": "user", "content": "@sim:error=invalid_request"}])
    assert caught.value.status == 400
    assert caught.value.body == {
        "error": {
            "message": "Simulated invalid_request_error requested by @sim:error",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


def test_random_ids_have_openais_form_and_do_not_repeat() -> None:
    from batchd.backends.endpoints.base import random_id

    ids = {random_id("batch_req_") for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"batch_req_[0-9A-Za-z]{24}", i) for i in ids)
    assert len({i[10] for i in ids}) > 50  # every position draws on the whole alphabet
    assert len({i[-1] for i in ids}) > 50


def test_tool_calls_and_json_schema_answers_come_back_in_openais_shape() -> None:
    weather = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": weather}}]
    called = ChatCompletion.model_validate(
        call(
            endpoints.CHAT,
            messages=[{"role": "user", "content": "weather?"}],
            tools=tools,
            tool_choice="required",
        )
    )
    choice = called.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    function = choice.message.tool_calls[0].function
    assert function.name == "get_weather" and "city" in json.loads(function.arguments)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "o", "schema": schema}}
    shaped = call(endpoints.CHAT, messages=[{"role": "user", "content": "a number"}], response_format=fmt)
    assert isinstance(json.loads(shaped["choices"][0]["message"]["content"])["n"], int)
