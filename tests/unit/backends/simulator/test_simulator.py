from __future__ import annotations

import ast
import asyncio
import base64
import os
import re
import subprocess
import sys
import time
from typing import Any

import orjson
import pydantic
import pytest
from anthropic.types import Message
from anthropic.types.beta import BetaMessage

from batchd import exceptions
from batchd.backends import pdf
from batchd.backends.simulator import backend as simulated
from batchd.backends.simulator import schema as sim_schema
from batchd.backends.simulator import text as sim_text
from tests.unit.conftest import make_pdf

ID_BODY = "01[1-9A-HJ-NP-Za-km-z]{22}"
MODEL = "claude-sonnet-4-5"

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 2},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "unit": {"enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "days"],
    },
}
RICH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "address": {
            "type": "object",
            "properties": {
                "street": {"type": "string"},
                "zip": {"type": "string", "maxLength": 5},
            },
            "required": ["street", "zip"],
        }
    },
    "properties": {
        "name": {"type": "string", "minLength": 3, "maxLength": 40},
        "age": {"type": "integer", "exclusiveMinimum": 17, "exclusiveMaximum": 21},
        "score": {"type": "number", "minimum": 0.5, "maximum": 0.75},
        "active": {"type": "boolean"},
        "tags": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 2,
            "maxItems": 4,
        },
        "level": {"type": "string", "enum": ["low", "mid", "high"]},
        "home": {"$ref": "#/$defs/address"},
        "contact": {"anyOf": [{"type": "null"}, {"type": "string", "format": "email"}]},
        "when": {"type": "string", "format": "date"},
        "kind": {"const": "person"},
        "ratio": {"type": ["number", "null"], "minimum": -3, "maximum": -1},
        "matrix": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "integer"}},
        },
        "extra": {
            "allOf": [
                {
                    "type": "object",
                    "properties": {"a": {"type": "integer"}},
                    "required": ["a"],
                },
                {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
            ]
        },
    },
    "required": [
        "name",
        "age",
        "score",
        "active",
        "tags",
        "level",
        "home",
        "contact",
        "when",
        "kind",
        "ratio",
        "matrix",
        "extra",
    ],
}


@pytest.fixture
def backend() -> simulated.SimulatedBackend:
    return simulated.SimulatedBackend()


def request(text: str | list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def check(msg: dict[str, Any]) -> dict[str, Any]:
    """Validate `msg` with the SDK models, strictly, refusing keys they do not know."""
    assert orjson.loads(orjson.dumps(msg)) == msg  # JSON-ready: no tuples, no odd types
    for model in (Message, BetaMessage):
        model.model_validate(msg)
        parsed = model.model_validate_json(orjson.dumps(msg), strict=True)
        _no_unknown_keys(parsed, msg, "message")
    assert re.fullmatch(f"msg_{ID_BODY}", msg["id"])
    assert msg["model"] == MODEL
    assert msg["usage"]["output_tokens"] == output_words(msg)
    return msg


def _no_unknown_keys(model: pydantic.BaseModel, raw: dict[str, Any], path: str) -> None:
    unknown = set(raw) - set(type(model).model_fields)
    assert not unknown, f"{path}: keys the SDK does not know: {unknown}"
    for key, value in raw.items():
        sub = getattr(model, key)
        if isinstance(sub, pydantic.BaseModel) and isinstance(value, dict):
            _no_unknown_keys(sub, value, f"{path}.{key}")
        elif isinstance(sub, list) and isinstance(value, list):
            for i, (item, raw_item) in enumerate(zip(sub, value, strict=True)):
                if isinstance(item, pydantic.BaseModel):
                    _no_unknown_keys(item, raw_item, f"{path}.{key}[{i}]")


def output_words(msg: dict[str, Any]) -> int:
    total = 0
    for block in msg["content"]:
        if block["type"] in ("text", "thinking"):
            total += len(block[block["type"]].split())
        elif block["type"] in ("tool_use", "server_tool_use"):
            total += max(1, len(orjson.dumps(block["input"])) // 4)
    return total


def texts(msg: dict[str, Any]) -> str:
    return "".join(b["text"] for b in msg["content"] if b["type"] == "text")


def types(msg: dict[str, Any]) -> list[str]:
    return [b["type"] for b in msg["content"]]


# -- a small JSON-schema checker, enough for the schemas above -------------------------


def conforms(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> bool:
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"][2:].split("/"):
            target = target[part]
        return conforms(value, target, root)
    if "allOf" in schema:
        return all(conforms(value, s, root) for s in schema["allOf"])
    if "anyOf" in schema:
        return any(conforms(value, s, root) for s in schema["anyOf"])
    if "const" in schema and value != schema["const"]:
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is_type(value, k) for k in kinds):
            return False
    if isinstance(value, dict):
        if not set(schema.get("required", [])) <= value.keys():
            return False
        props = schema.get("properties", {})
        return all(conforms(v, props[k], root) for k, v in value.items() if k in props)
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", 10**9):
            return False
        return all(conforms(v, schema.get("items", {}), root) for v in value)
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 10**9):
            return False
        if schema.get("format") == "email" and "@" not in value:
            return False
        return schema.get("format") != "date" or bool(re.fullmatch(r"\d{4}-\d\d-\d\d", value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (
            schema.get("minimum", -1e18) <= value <= schema.get("maximum", 1e18)
            and schema.get("exclusiveMinimum", -1e18) < value
            and value < schema.get("exclusiveMaximum", 1e18)
        )
    return True


def _is_type(value: Any, kind: str) -> bool:
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "null": value is None,
    }[kind]


def test_the_schema_checker_can_fail() -> None:
    assert not conforms({"name": "x"}, RICH_SCHEMA, RICH_SCHEMA)
    assert not conforms(5, {"type": "integer", "exclusiveMaximum": 5}, {})
    assert conforms({"a": 1, "b": True}, RICH_SCHEMA["properties"]["extra"], RICH_SCHEMA)


# -- plain answers ---------------------------------------------------------------------


async def test_plain_answer(backend: simulated.SimulatedBackend) -> None:
    msg = check(await backend.create_message(request("Tell me about tidal pools, please")))
    assert types(msg) == ["text"]
    assert msg["content"][0]["text"].startswith("You asked about: Tell me about tidal pools")
    assert msg["stop_reason"] == "end_turn"
    assert msg["stop_sequence"] is None and msg["stop_details"] is None
    assert msg["container"] is None
    usage = msg["usage"]
    assert usage["input_tokens"] == 6
    assert 20 <= usage["output_tokens"] <= 160
    assert usage["service_tier"] == "batch"
    assert usage["cache_creation_input_tokens"] == usage["cache_read_input_tokens"] == 0
    assert usage["server_tool_use"] is None


@pytest.mark.parametrize(
    "text",
    ["", " ", "one", " one ", "one two", "one  two", "  a b  ", "a\tb", "a\nb\n", "a\x1cb", "a \x1f b",
     "a\x0b\x0cb\r", "caf\u00e9 au lait", "a\u00a0b", "a\u2003b c", "a\x85b", "a\u3000 b", "x " * 300],
)  # fmt: skip
def test_count_words_counts_as_split_does(text: str) -> None:
    assert sim_text.count_words(text) == len(text.split())


def test_count_words_knows_every_space_character() -> None:
    spaces = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    for space in spaces:
        assert sim_text.count_words(f"a{space}b{space}") == 2, hex(ord(space))
        assert sim_text.count_words(f"{space}a b") == 2, hex(ord(space))


async def test_same_params_same_message_whatever_the_order(
    backend: simulated.SimulatedBackend,
) -> None:
    params = request("What is a lighthouse?", temperature=0.5, metadata={"user_id": "u1"})
    reordered = dict(reversed(list(params.items())))
    first = await backend.create_message(params)
    await backend.create_message(request("something else entirely"))
    assert await simulated.SimulatedBackend().create_message(reordered) == first
    other = await backend.create_message(request("What is a lighthouse??"))
    assert other["id"] != first["id"] and texts(other) != texts(first)


COMPLEX = request(
    "Research pools, then call record_person",
    tools=[{"type": "web_search_20250305", "name": "web_search"},
           {"name": "record_person", "input_schema": {
               "type": "object", "required": ["zeta", "alpha", "mid", "omega"]}}],
    thinking={"type": "enabled", "budget_tokens": 100},
)  # fmt: skip


async def test_same_message_in_another_process() -> None:
    code = (
        "import asyncio, json, sys\n"
        "from batchd.backends.simulator import SimulatedBackend\n"
        "params = json.loads(sys.stdin.read())\n"
        "message = asyncio.run(SimulatedBackend().create_message(params))\n"
        "print(json.dumps(message))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], input=orjson.dumps(COMPLEX), env=env,
        capture_output=True, check=True,
    )  # fmt: skip
    here = await simulated.SimulatedBackend().create_message(COMPLEX)
    assert orjson.loads(out.stdout) == here
    assert list(here["content"][-1]["input"]) == ["zeta", "alpha", "mid", "omega"]


async def test_lengths_vary_between_requests(
    backend: simulated.SimulatedBackend,
) -> None:
    lengths = set()
    for i in range(12):
        msg = await backend.create_message(request(f"question {i}"))
        lengths.add(msg["usage"]["output_tokens"])
    assert len(lengths) > 3


async def test_input_tokens_count_system_messages_and_tools(
    backend: simulated.SimulatedBackend,
) -> None:
    params = request("four words right here", system=[{"type": "text", "text": "be brief"}])
    params["messages"] = [
        {"role": "user", "content": "one two"},
        {"role": "assistant", "content": [{"type": "text", "text": "three"}]},
        *params["messages"],
    ]
    msg = await backend.create_message(params)
    assert msg["usage"]["input_tokens"] == 2 + 2 + 1 + 4
    with_tool = await backend.create_message({**params, "tools": [WEATHER_TOOL]})
    assert with_tool["usage"]["input_tokens"] > 9


async def test_images_and_prefill(backend: simulated.SimulatedBackend) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "iVBORw0KGgo="}}  # fmt: skip
    params = request([image, {"type": "text", "text": "Describe it"}])
    params["messages"].append({"role": "assistant", "content": "It shows"})
    msg = check(await backend.create_message(params))
    assert msg["usage"]["input_tokens"] == 1600 + 2 + 2
    assert texts(msg).startswith("You asked about: Describe it.")


async def test_zero_latency_never_suspends(backend: simulated.SimulatedBackend) -> None:
    coro = backend.create_message(request("quick one"))
    with pytest.raises(StopIteration) as done:
        coro.send(None)
    check(done.value.value)


async def test_latency_and_token_latency_are_slept() -> None:
    slow = simulated.SimulatedBackend(latency=0.03, token_latency=0.001)
    started = time.perf_counter()
    msg = await slow.create_message(request("hello @sim:tokens=20"))
    assert time.perf_counter() - started >= 0.03 + 0.02
    assert msg["usage"]["output_tokens"] == 20
    await slow.aclose()
    await slow.aclose()


# -- max_tokens and stop sequences -----------------------------------------------------


async def test_max_tokens_truncates_exactly(
    backend: simulated.SimulatedBackend,
) -> None:
    msg = check(await backend.create_message({**request("go on @sim:tokens=50"), "max_tokens": 10}))
    assert msg["stop_reason"] == "max_tokens"
    assert len(texts(msg).split()) == 10 == msg["usage"]["output_tokens"]


async def test_natural_length_within_max_tokens_ends_turn(
    backend: simulated.SimulatedBackend,
) -> None:
    msg = check(await backend.create_message({**request("go on @sim:tokens=10"), "max_tokens": 10}))
    assert msg["stop_reason"] == "end_turn"
    assert len(texts(msg).split()) == 10


async def test_stop_sequence_cuts_before_it(
    backend: simulated.SimulatedBackend,
) -> None:
    params = request("Describe zebras and their stripes", stop_sequences=["NEVER", "zebras"])
    msg = check(await backend.create_message(params))
    assert msg["stop_reason"] == "stop_sequence"
    assert msg["stop_sequence"] == "zebras"
    assert texts(msg) == "You asked about: Describe "
    assert msg["usage"]["output_tokens"] == 4


async def test_stop_sequence_that_never_occurs(
    backend: simulated.SimulatedBackend,
) -> None:
    msg = check(await backend.create_message(request("Describe zebras", stop_sequences=["§§"])))
    assert msg["stop_reason"] == "end_turn" and msg["stop_sequence"] is None


async def test_max_tokens_wins_over_a_later_stop_sequence(
    backend: simulated.SimulatedBackend,
) -> None:
    params = request("one two three four five six zebra", stop_sequences=["zebra"], max_tokens=5)
    msg = check(await backend.create_message(params))
    assert msg["stop_reason"] == "max_tokens" and msg["stop_sequence"] is None
    assert texts(msg) == "You asked about: one two"


# -- thinking --------------------------------------------------------------------------


@pytest.mark.parametrize("thinking", [{"type": "enabled", "budget_tokens": 40}, {"type": "adaptive"}])
async def test_thinking_block_leads(backend: simulated.SimulatedBackend, thinking: dict[str, Any]) -> None:
    msg = check(await backend.create_message(request("Why is the sky blue?", thinking=thinking)))
    assert types(msg) == ["thinking", "text"]
    block = msg["content"][0]
    words = len(block["thinking"].split())
    assert 0 < words <= thinking.get("budget_tokens", 1024)
    assert block["thinking"].startswith("The user is asking about: Why is the sky blue?")
    assert len(block["signature"]) > 100
    base64.b64decode(block["signature"], validate=True)
    assert msg["usage"]["output_tokens_details"] == {"thinking_tokens": words}


async def test_thinking_leaves_room_for_the_answer(
    backend: simulated.SimulatedBackend,
) -> None:
    params = request("Why?", thinking={"type": "enabled", "budget_tokens": 1024}, max_tokens=30)
    msg = check(await backend.create_message(params))
    assert types(msg) == ["thinking", "text"]
    assert len(msg["content"][0]["thinking"].split()) <= 15
    assert msg["usage"]["output_tokens"] <= 30


async def test_disabled_thinking(backend: simulated.SimulatedBackend) -> None:
    msg = check(await backend.create_message(request("Why?", thinking={"type": "disabled"})))
    assert types(msg) == ["text"]


# -- client tools ----------------------------------------------------------------------


@pytest.mark.parametrize("prompt", [f"prompt number {i} about people" for i in range(8)])
async def test_tool_input_satisfies_the_schema(backend: simulated.SimulatedBackend, prompt: str) -> None:
    tool = {"name": "record_person", "input_schema": RICH_SCHEMA}
    params = request(
        prompt,
        tools=[WEATHER_TOOL, tool],
        tool_choice={"type": "tool", "name": "record_person"},
    )
    msg = check(await backend.create_message(params))
    assert types(msg) == ["tool_use"]  # a forced tool_choice gets no preamble
    block = msg["content"][0]
    assert re.fullmatch(f"toolu_{ID_BODY}", block["id"])
    assert block["name"] == "record_person"
    assert conforms(block["input"], RICH_SCHEMA, RICH_SCHEMA), block["input"]
    assert msg["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer", "exclusiveMinimum": 17, "exclusiveMaximum": 19},
        {"type": "integer", "minimum": 2.5, "maximum": 3.5},
        {"type": "integer", "minimum": 0, "maximum": 20, "multipleOf": 7},
        {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.02},
        {"type": "number", "maximum": -50},
        {"type": "string", "minLength": 30, "maxLength": 31},
        {"type": "array", "items": {"type": "boolean"}, "minItems": 4, "maxItems": 4},
    ],
)
def test_tool_input_bounds(schema: dict[str, Any]) -> None:
    tool = {"name": "t", "input_schema": {"type": "object", "required": ["v"],
                                          "properties": {"v": schema}}}  # fmt: skip
    for seed in range(200):
        value = sim_schema.tool_input(tool, sim_text.Rng(seed), ["some", "words"])["v"]
        assert conforms(value, schema, {}), value
        if "multipleOf" in schema:
            assert value % schema["multipleOf"] == 0


async def test_tool_choice_any(backend: simulated.SimulatedBackend) -> None:
    msg = check(
        await backend.create_message(request("hi", tools=[WEATHER_TOOL], tool_choice={"type": "any"}))
    )
    assert types(msg) == ["tool_use"]
    assert conforms(msg["content"][0]["input"], WEATHER_TOOL["input_schema"], {})


async def test_auto_calls_a_tool_the_prompt_names(
    backend: simulated.SimulatedBackend,
) -> None:
    msg = check(await backend.create_message(request("Please get weather for Lisbon", tools=[WEATHER_TOOL])))
    assert types(msg) == ["text", "tool_use"]
    assert msg["stop_reason"] == "tool_use"
    assert "get_weather" in msg["content"][0]["text"]


async def test_auto_without_a_mention_answers(
    backend: simulated.SimulatedBackend,
) -> None:
    msg = check(await backend.create_message(request("Hello there", tools=[WEATHER_TOOL])))
    assert types(msg) == ["text"] and msg["stop_reason"] == "end_turn"


async def test_tool_choice_none_never_calls(
    backend: simulated.SimulatedBackend,
) -> None:
    params = request("use get_weather now", tools=[WEATHER_TOOL], tool_choice={"type": "none"})
    assert types(check(await backend.create_message(params))) == ["text"]


async def test_tool_result_is_answered_with_text(
    backend: simulated.SimulatedBackend,
) -> None:
    params = request("What's the weather in Lisbon?", tools=[WEATHER_TOOL])
    params["messages"] += [
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Lisbon"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "18 degrees and sunny"}],
                }
            ],
        },
    ]
    msg = check(await backend.create_message(params))
    assert types(msg) == ["text"] and msg["stop_reason"] == "end_turn"
    assert texts(msg).startswith("The get_weather tool returned: 18 degrees and sunny")


async def test_tool_errors_are_reported(backend: simulated.SimulatedBackend) -> None:
    params = request("Weather?", tools=[WEATHER_TOOL])
    params["messages"] += [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_2",
                                           "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2",
                                      "content": "city missing", "is_error": True}]},
    ]  # fmt: skip
    msg = check(await backend.create_message(params))
    assert texts(msg).startswith("The get_weather tool reported an error: city missing")


async def test_anthropic_defined_client_tools_get_a_plausible_input(
    backend: simulated.SimulatedBackend,
) -> None:
    bash = {"type": "bash_20250124", "name": "bash"}
    msg = check(await backend.create_message(request("hi @sim:tool=bash", tools=[bash])))
    assert msg["content"][-1]["input"] == {"command": "ls -la"}


async def test_forced_tool_past_max_tokens_is_dropped(
    backend: simulated.SimulatedBackend,
) -> None:
    params = request("hi", tools=[WEATHER_TOOL], tool_choice={"type": "any"}, max_tokens=1)
    msg = check(await backend.create_message(params))
    assert msg["content"] == [] and msg["stop_reason"] == "max_tokens"


# -- citations -------------------------------------------------------------------------

PLAIN = (
    "Tidal pools form where the sea retreats at low tide. "
    "Many small animals live in them. "
    "Starfish cling to rocks!\nAnemones wait for food to drift past."
)


def citations_of(msg: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for b in msg["content"] if b["type"] == "text" for c in b.get("citations") or []]


async def test_char_location_citations(backend: simulated.SimulatedBackend) -> None:
    ignored = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "Not cited."},
    }
    cited = {
        "type": "document",
        "title": "Pools",
        "citations": {"enabled": True},
        "source": {"type": "text", "media_type": "text/plain", "data": PLAIN},
    }
    msg = check(
        await backend.create_message(
            request([ignored, cited, {"type": "text", "text": "What lives in tidal pools?"}])
        )
    )
    found = citations_of(msg)
    assert found
    for c in found:
        assert c["type"] == "char_location"
        assert c["document_index"] == 1 and c["document_title"] == "Pools"
        assert c["cited_text"] == PLAIN[c["start_char_index"] : c["end_char_index"]]
        assert len(c["cited_text"].split()) >= 3
    assert msg["usage"]["input_tokens"] >= len(PLAIN.split()) + 2 + 5


async def test_content_block_location_citations(
    backend: simulated.SimulatedBackend,
) -> None:
    content = [
        {"type": "text", "text": "First fact."},
        {"type": "text", "text": "Second fact."},
    ]
    doc = {
        "type": "document",
        "citations": {"enabled": True},
        "source": {"type": "content", "content": content},
    }
    msg = check(await backend.create_message(request([doc, {"type": "text", "text": "Facts?"}])))
    found = citations_of(msg)
    assert found
    for c in found:
        assert c["type"] == "content_block_location"
        assert c["end_block_index"] == c["start_block_index"] + 1
        assert c["cited_text"] == content[c["start_block_index"]]["text"]
        assert c["document_title"] is None


async def test_page_location_citations(backend: simulated.SimulatedBackend) -> None:
    data = make_pdf("Apples grow on trees in the orchard.", "Bananas ripen in warm places.")
    pages = pdf.extract_pages(data)
    doc = {
        "type": "document",
        "citations": {"enabled": True},
        "source": {"type": "base64", "media_type": "application/pdf", "data": data},
    }
    msg = check(await backend.create_message(request([doc, {"type": "text", "text": "Fruit?"}])))
    found = citations_of(msg)
    assert found
    for c in found:
        assert c["type"] == "page_location" and c["document_index"] == 0
        assert 1 <= c["start_page_number"] <= 2
        assert c["end_page_number"] == c["start_page_number"] + 1
        assert c["cited_text"] and c["cited_text"] in pages[c["start_page_number"] - 1]


async def test_bad_pdf_is_a_final_invalid_request(
    backend: simulated.SimulatedBackend,
) -> None:
    doc = {
        "type": "document",
        "source": {
            "type": "base64",
            "media_type": "application/pdf",
            "data": base64.b64encode(b"%PDF-1.4 broken").decode(),
        },
    }
    with pytest.raises(exceptions.BackendError) as caught:
        await backend.create_message(request([{"type": "text", "text": "Read"}, doc]))
    assert caught.value.status == 400
    assert caught.value.error_type == "invalid_request_error"
    assert caught.value.retryable is False
    assert caught.value.message.startswith("messages.0.content.1.source: ")


# -- server tools ----------------------------------------------------------------------

SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}


async def test_web_search(backend: simulated.SimulatedBackend) -> None:
    msg = check(await backend.create_message(request("latest tidal research", tools=[SEARCH])))
    kinds = types(msg)
    assert kinds[:3] == ["text", "server_tool_use", "web_search_tool_result"]
    call, result = msg["content"][1], msg["content"][2]
    assert re.fullmatch(f"srvtoolu_{ID_BODY}", call["id"])
    assert call["name"] == "web_search" and call["input"] == {"query": "latest tidal research"}
    assert result["tool_use_id"] == call["id"]
    urls = {r["url"]: r["title"] for r in result["content"]}
    assert 3 <= len(urls) <= 5
    assert all(u.startswith("https://search.batchd.invalid/") for u in urls)
    found = citations_of(msg)
    assert found and all(c["type"] == "web_search_result_location" for c in found)
    assert all(urls[c["url"]] == c["title"] and c["encrypted_index"] for c in found)
    assert msg["usage"]["server_tool_use"] == {
        "web_search_requests": 1,
        "web_fetch_requests": 0,
    }
    assert msg["stop_reason"] == "end_turn" and kinds[-1] == "text"


def expected_stdout(program: str) -> str:
    values = ast.literal_eval(program.splitlines()[0].split("=", 1)[1].strip())
    total = sum(values)
    return f"count = {len(values)}\nsum = {total}\nmean = {total / len(values):.2f}\n"


async def test_code_execution_through_bash(backend: simulated.SimulatedBackend) -> None:
    tool = {"type": "code_execution_20250825", "name": "code_execution"}
    msg = check(await backend.create_message(request("average some numbers", tools=[tool])))
    call = next(b for b in msg["content"] if b["type"] == "server_tool_use")
    result = next(b for b in msg["content"] if b["type"] == "bash_code_execution_tool_result")
    assert call["name"] == "bash_code_execution" and result["tool_use_id"] == call["id"]
    program = call["input"]["command"].split("\n", 1)[1].rsplit("EOF", 1)[0]
    assert result["content"]["type"] == "bash_code_execution_result"
    assert result["content"]["stdout"] == expected_stdout(program)
    assert result["content"]["return_code"] == 0 and result["content"]["stderr"] == ""
    assert re.fullmatch(r"container_\w+", msg["container"]["id"])
    assert msg["usage"]["server_tool_use"] is None


async def test_legacy_code_execution(backend: simulated.SimulatedBackend) -> None:
    tool = {"type": "code_execution_20250522", "name": "code_execution"}
    msg = check(await backend.create_message(request("average some numbers", tools=[tool])))
    call = next(b for b in msg["content"] if b["type"] == "server_tool_use")
    result = next(b for b in msg["content"] if b["type"] == "code_execution_tool_result")
    assert call["name"] == "code_execution" and result["tool_use_id"] == call["id"]
    assert result["content"]["type"] == "code_execution_result"
    assert result["content"]["stdout"] == expected_stdout(call["input"]["code"])
    assert msg["container"] is not None


async def test_everything_at_once(backend: simulated.SimulatedBackend) -> None:
    doc = {
        "type": "document",
        "citations": {"enabled": True},
        "source": {"type": "text", "media_type": "text/plain", "data": PLAIN},
    }
    params = request(
        [doc, {"type": "text", "text": "Research pools, then call get_weather"}],
        tools=[
            SEARCH,
            {"type": "code_execution_20250825", "name": "code_execution"},
            WEATHER_TOOL,
        ],
        thinking={"type": "enabled", "budget_tokens": 1024},
        max_tokens=4096,
    )
    msg = check(await backend.create_message(params))
    kinds = types(msg)
    assert kinds[0] == "thinking" and kinds[-1] == "tool_use"
    assert kinds.index("web_search_tool_result") < kinds.index("bash_code_execution_tool_result")
    kinds_of_citations = {c["type"] for c in citations_of(msg)}
    assert kinds_of_citations == {"char_location", "web_search_result_location"}
    assert msg["stop_reason"] == "tool_use" and msg["container"] is not None
    assert msg["usage"]["output_tokens"] <= 4096

    for budget in (5, 40, 120):
        small = check(await backend.create_message({**params, "max_tokens": budget}))
        assert small["stop_reason"] == "max_tokens"
        assert small["usage"]["output_tokens"] <= budget


# -- directives ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status", "error_type"),
    [
        ("invalid_request_error", 400, "invalid_request_error"),
        ("invalid_request", 400, "invalid_request_error"),
        ("authentication_error", 401, "authentication_error"),
        ("permission_error", 403, "permission_error"),
        ("not_found", 404, "not_found_error"),
        ("request_too_large", 413, "request_too_large"),
        ("rate_limit", 429, "rate_limit_error"),
        ("api_error", 500, "api_error"),
        ("overloaded", 529, "overloaded_error"),
        ("529", 529, "overloaded_error"),
    ],
)
async def test_error_directive(
    backend: simulated.SimulatedBackend, value: str, status: int, error_type: str
) -> None:
    for attempt in (1, 5):
        with pytest.raises(exceptions.BackendError) as caught:
            await backend.create_message(request(f"hi @sim:error={value}"), attempt=attempt)
        assert (caught.value.status, caught.value.error_type) == (status, error_type)
        assert caught.value.retryable is False
        assert caught.value.message == f"Simulated {error_type} requested by @sim:error"


async def test_fail_then_succeed(backend: simulated.SimulatedBackend) -> None:
    params = request("hi @sim:fail=529x2")
    for attempt in (1, 2):
        with pytest.raises(exceptions.BackendError) as caught:
            await backend.create_message(params, attempt=attempt)
        assert (caught.value.status, caught.value.error_type) == (
            529,
            "overloaded_error",
        )
        assert caught.value.retryable is True
    check(await backend.create_message(params, attempt=3))


@pytest.mark.parametrize(
    ("code", "status", "error_type", "retry_after"),
    [
        ("429", 429, "rate_limit_error", 0.0),
        ("500", 500, "api_error", None),
        ("503", 503, "api_error", None),
        ("529", 529, "overloaded_error", None),
    ],
)
async def test_fail_forever(
    backend: simulated.SimulatedBackend,
    code: str,
    status: int,
    error_type: str,
    retry_after: float | None,
) -> None:
    for attempt in (1, 2, 50):
        with pytest.raises(exceptions.BackendError) as caught:
            await backend.create_message(request(f"@sim:fail={code} hi"), attempt=attempt)
        assert (caught.value.status, caught.value.error_type) == (status, error_type)
        assert caught.value.retryable is True and caught.value.retry_after == retry_after


async def test_fail_timeout(backend: simulated.SimulatedBackend) -> None:
    params = request("hi @sim:fail=timeoutx1")
    with pytest.raises(exceptions.BackendTimeout) as caught:
        await backend.create_message(params, attempt=1)
    assert caught.value.retryable is True
    check(await backend.create_message(params, attempt=2))


async def test_delay_directive(backend: simulated.SimulatedBackend) -> None:
    started = time.perf_counter()
    check(await backend.create_message(request("wait @sim:delay=0.05")))
    assert time.perf_counter() - started >= 0.05


async def test_delay_can_be_cancelled(backend: simulated.SimulatedBackend) -> None:
    task = asyncio.ensure_future(backend.create_message(request("@sim:delay=30")))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_tokens_directive(backend: simulated.SimulatedBackend) -> None:
    for n in (0, 1, 3, 37, 400):
        msg = check(
            await backend.create_message(
                {**request(f"@sim:tokens={n} talk about rivers"), "max_tokens": 1000}
            )
        )
        assert len(texts(msg).split()) == n
        assert msg["stop_reason"] == "end_turn"


async def test_refusal_directive(backend: simulated.SimulatedBackend) -> None:
    msg = check(await backend.create_message(request("do it @sim:refusal")))
    assert msg["stop_reason"] == "refusal"
    assert types(msg) == ["text"] and "@sim" not in texts(msg)
    assert msg["stop_details"]["type"] == "refusal" and msg["stop_details"]["category"] is None
    cyber = check(await backend.create_message(request("do it @sim:refusal=cyber")))
    assert cyber["stop_details"]["category"] == "cyber"


async def test_tool_directive(backend: simulated.SimulatedBackend) -> None:
    msg = check(await backend.create_message(request("hello @sim:tool=get_weather", tools=[WEATHER_TOOL])))
    assert types(msg) == ["text", "tool_use"] and msg["content"][1]["name"] == "get_weather"
    with pytest.raises(exceptions.BackendError) as caught:
        await backend.create_message(request("hello @sim:tool=nope", tools=[WEATHER_TOOL]))
    assert caught.value.status == 400 and caught.value.retryable is False


async def test_directives_combine_and_are_not_echoed(
    backend: simulated.SimulatedBackend,
) -> None:
    msg = check(
        await backend.create_message(
            request(
                [
                    {"type": "text", "text": "Tell me"},
                    {"type": "text", "text": "@sim:tokens=12 about owls @sim:delay=0"},
                ]
            )
        )
    )
    assert texts(msg).startswith("You asked about: Tell me about owls.\n\n")
    assert "@sim" not in texts(msg) and len(texts(msg).split()) == 12


async def test_only_the_last_user_message_directs(
    backend: simulated.SimulatedBackend,
) -> None:
    params = request("fine")
    params["messages"] = [
        {"role": "user", "content": "@sim:error=api_error"},
        {"role": "assistant", "content": "ok"},
        *params["messages"],
    ]
    check(await backend.create_message(params))


@pytest.mark.parametrize(
    "text",
    [
        "@sim:bogus",
        "@sim:tokens=many",
        "@sim:fail=418",
        "@sim:delay=-1",
        "@sim:error=teapot",
        "@sim:refusal=rude",
        "@sim:fail=529xtwo",
        "@sim:tool=",
    ],
)
async def test_bad_directives_are_final_invalid_requests(
    backend: simulated.SimulatedBackend, text: str
) -> None:
    with pytest.raises(exceptions.BackendError) as caught:
        await backend.create_message(request(f"hi {text}"))
    assert caught.value.status == 400 and caught.value.retryable is False
    assert text in caught.value.message
