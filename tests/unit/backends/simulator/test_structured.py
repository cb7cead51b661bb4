"""The simulator's structured outputs: a text block of JSON valid against the requested schema."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from batchd import exceptions, params
from batchd.backends.simulator import SimulatedBackend

jsonschema_rs = pytest.importorskip("jsonschema_rs")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "money": {"type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]}
    },
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "when": {"type": "string", "format": "date-time"},
        "host": {"type": "string", "format": "hostname"},
        "ip6": {"type": "string", "format": "ipv6"},
        "wait": {"type": "string", "format": "duration"},
        "status": {"enum": ["open", "closed"]},
        "price": {"$ref": "#/$defs/money"},
        "lines": {
            "type": "array",
            "minItems": 2,
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
                "required": ["sku", "qty"],
                "additionalProperties": False,
            },
        },
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["id", "status", "price", "lines"],
    "additionalProperties": False,
}


def ask(text: str, **extra: Any) -> dict[str, Any]:
    body = {"model": "m", "max_tokens": 2048, "messages": [{"role": "user", "content": text}], **extra}
    return params.prepare(body)


def fmt(schema: dict[str, Any] = SCHEMA) -> dict[str, Any]:
    return {"format": {"type": "json_schema", "schema": schema}}


@pytest.mark.parametrize("n", range(20))
def test_the_answer_is_json_valid_against_the_schema(n: int) -> None:
    message, _ = SimulatedBackend().answer(ask(f"order number {n}", output_config=fmt()))
    (block,) = message["content"]
    value = orjson.loads(block["text"])
    validator = jsonschema_rs.validator_for(SCHEMA, validate_formats=True)
    assert not [e.message for e in validator.iter_errors(value)], value
    assert message["usage"]["output_tokens"] == max(1, len(block["text"]) // 4)


def test_the_beta_output_format_and_a_non_object_root() -> None:
    schema = {"type": "array", "items": {"type": "integer"}, "minItems": 1}
    message, _ = SimulatedBackend().answer(
        ask("numbers", output_format={"type": "json_schema", "schema": schema})
    )
    value = orjson.loads(message["content"][0]["text"])
    assert isinstance(value, list) and value and all(isinstance(v, int) for v in value)


def test_the_schema_counts_as_input() -> None:
    sim = SimulatedBackend()
    plain, _ = sim.answer(ask("hello"))
    shaped, _ = sim.answer(ask("hello", output_config=fmt()))
    assert shaped["usage"]["input_tokens"] == plain["usage"]["input_tokens"] + len(orjson.dumps(SCHEMA)) // 4


def test_no_prose_around_the_json() -> None:
    """Every text block is the JSON (the SDK's `parse` reads each one): no preambles from tool calls."""
    search = {"type": "web_search_20250305", "name": "web_search"}
    code = {"type": "code_execution_20250825", "name": "code_execution"}
    message, _ = SimulatedBackend().answer(ask("news", tools=[search, code], output_config=fmt()))
    texts = [b["text"] for b in message["content"] if b["type"] == "text"]
    assert len(texts) == 1 and orjson.loads(texts[0])["status"] in ("open", "closed")
    tool = {"name": "lookup", "input_schema": {"type": "object"}}
    message, _ = SimulatedBackend().answer(ask("use lookup now", tools=[tool], output_config=fmt()))
    assert [b["type"] for b in message["content"]] == ["tool_use"]  # the tool call comes first


def test_max_tokens_cuts_the_json() -> None:
    message, _ = SimulatedBackend().answer(ask("x", output_config=fmt()) | {"max_tokens": 3})
    assert message["stop_reason"] == "max_tokens" and message["usage"]["output_tokens"] == 3
    assert len(message["content"][0]["text"]) == 12


async def test_count_tokens_is_the_usage_rule() -> None:
    sim = SimulatedBackend()
    p = ask("count these five words", output_config=fmt(), system="Be brief.")
    message, _ = sim.answer(p)
    assert await sim.count_tokens(p) == message["usage"]["input_tokens"]


def test_citations_and_structured_outputs_do_not_mix() -> None:
    doc = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "Grass is green."},
        "citations": {"enabled": True},
    }
    body = ask("x", output_config=fmt())
    body["messages"] = [{"role": "user", "content": [doc, {"type": "text", "text": "Colour?"}]}]
    with pytest.raises(exceptions.BackendError, match="Citations are not supported") as info:
        SimulatedBackend().answer(body)
    assert info.value.status == 400
