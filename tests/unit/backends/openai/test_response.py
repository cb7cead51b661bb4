"""Chat completion -> Anthropic Message, with plain dicts."""

from __future__ import annotations

from typing import Any

import anthropic.types
import pytest

from batchd import exceptions
from batchd.backends.openai.response import to_message


def completion(message: dict[str, Any], finish: str = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish, **extra}
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 5},
    }


def convert(data: dict[str, Any], **params: Any) -> dict[str, Any]:
    message = to_message(data, model="claude-x", params=params)
    anthropic.types.Message.model_validate(message)  # the SDK's own type accepts it
    return message


def test_text_and_usage() -> None:
    m = convert(completion({"content": "Hello"}))
    assert m["content"] == [{"type": "text", "text": "Hello"}]
    assert m["model"] == "claude-x" and m["role"] == "assistant" and m["id"].startswith("msg_")
    assert (m["stop_reason"], m["stop_sequence"]) == ("end_turn", None)
    assert m["usage"] == {
        "input_tokens": 20,
        "output_tokens": 5,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    assert convert(completion({"content": "Hello"}))["id"] == m["id"]  # deterministic


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ],
)
def test_finish_reason(finish: str, stop_reason: str) -> None:
    assert convert(completion({"content": "x"}, finish))["stop_reason"] == stop_reason


@pytest.mark.parametrize("key", ["stop_reason", "stopping_word", "matched_stop"])
def test_stop_sequence_reported(key: str) -> None:
    m = convert(completion({"content": "x"}, **{key: "END"}), stop_sequences=["END"])
    assert (m["stop_reason"], m["stop_sequence"]) == ("stop_sequence", "END")


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_reasoning_becomes_thinking(key: str) -> None:
    m = convert(completion({"content": "Answer", key: "Let me think."}))
    assert m["content"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": ""},
        {"type": "text", "text": "Answer"},
    ]


def test_inline_think_tags() -> None:
    m = convert(completion({"content": "<think>\nhmm\n</think>\n\nAnswer"}))
    assert m["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": ""},
        {"type": "text", "text": "Answer"},
    ]


def test_tool_calls() -> None:
    call = {
        "id": "call_9",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    m = convert(completion({"content": None, "tool_calls": [call, {**call, "id": None}]}, "stop"))
    assert m["stop_reason"] == "tool_use"
    assert m["content"][0] == {
        "type": "tool_use",
        "id": "call_9",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert m["content"][1]["id"].startswith("toolu_")


def test_bad_tool_arguments_are_an_error() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}
    with pytest.raises(
        exceptions.BackendError, match=r"tool call 0 \(f\) with arguments that are not a JSON object"
    ):
        convert(completion({"tool_calls": [call]}, "tool_calls"))


def test_refusal() -> None:
    m = convert(completion({"content": None, "refusal": "I can't help with that."}))
    assert m["stop_reason"] == "refusal"
    assert m["content"] == [{"type": "text", "text": "I can't help with that."}]


def test_cached_tokens() -> None:
    data = completion({"content": "x"})
    data["usage"]["prompt_tokens_details"] = {"cached_tokens": 16}
    assert convert(data)["usage"] | {} == {
        "input_tokens": 4,
        "output_tokens": 5,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 16,
    }
    data = completion({"content": "x"})
    data["timings"] = {"cache_n": 12}  # llama.cpp
    assert convert(data)["usage"]["cache_read_input_tokens"] == 12


@pytest.mark.parametrize("data", [{}, {"choices": []}, {"choices": [{"finish_reason": "stop"}]}])
def test_malformed_completion(data: dict[str, Any]) -> None:
    with pytest.raises(exceptions.BackendError, match="answered a"):
        to_message(data, model="m", params={})
