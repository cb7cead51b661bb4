"""Streamed chat completion chunks -> Anthropic's events: they add up, in the official SDK's own
accumulator, to the Message `to_message` makes of the same completion unstreamed."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event

from batchd import exceptions
from batchd.backends.openai.response import to_message
from batchd.backends.openai.stream import Translator
from batchd.backends.streaming import Accumulator, Event
from tests.acceptance.openai_chunks import chunks


def completion(message: dict[str, Any], finish: str = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-7",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish, **extra}
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4}},
    }


def translate(parts: Iterable[dict[str, Any]], **params: Any) -> list[Event]:
    t = Translator(model="claude-x", params=params, upstream="up")
    events: list[Event] = []
    for part in parts:
        events.extend(t.chunk(part))
    events.extend(t.end())
    return events


def sdk_message(events: list[Event]) -> dict[str, Any]:
    snapshot: Any = None
    bufs: dict[int, bytes] = {}
    for name, data in events:
        snapshot = accumulate_event(
            event={"type": name, **data},  # type: ignore[arg-type]
            current_snapshot=snapshot,
            json_bufs=bufs,
        )
    result: dict[str, Any] = snapshot.to_dict()
    return result


def same(data: dict[str, Any], *, size: int = 7, **params: Any) -> list[Event]:
    """The stream of `data`'s chunks, checked against the unstreamed Message."""
    events = translate(chunks(data, size=size), **params)
    plain = unstreamed(data, **params)
    assert sdk_message(events) == plain
    acc = Accumulator()
    for event in events:
        acc.add(*event)
    assert acc.message == plain
    return events


def unstreamed(data: dict[str, Any], **params: Any) -> dict[str, Any]:
    """The Message of `data` unstreamed, with the `stop_details` every stream's end names (null)."""
    return {**to_message(data, model="claude-x", params=params), "stop_details": None}


def kinds(events: list[Event]) -> list[str]:
    return [d["delta"]["type"] if n == "content_block_delta" else n for n, d in events]


def test_text_streams_piece_by_piece() -> None:
    events = same(completion({"content": "The quick brown fox jumps."}))
    texts = [d["delta"]["text"] for n, d in events if n == "content_block_delta"]
    assert texts == ["The", " quick", " brown", " fox", " jumps."]
    assert kinds(events)[:2] == ["message_start", "content_block_start"]
    assert kinds(events)[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    delta = events[-2][1]
    assert delta["usage"] == {
        "input_tokens": 16,
        "output_tokens": 5,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 4,
    }


def test_reasoning_is_a_thinking_block_stripped_as_unstreamed() -> None:
    events = same(completion({"reasoning_content": "\n  Let me think.  \n\n", "content": "Four."}))
    thinking = "".join(d["delta"].get("thinking", "") for n, d in events if n == "content_block_delta")
    assert thinking == "Let me think."


@pytest.mark.parametrize(
    "text",
    [
        "<think>\nweighing it\n</think>\n\nThe answer.",
        "  <think>a</think>b",
        "<think></think>Just text",
        "<thinking>not a think tag</thinking>",
        "<thi",
        "   ",
    ],
)
def test_a_leading_think_tag_in_the_text(text: str) -> None:
    data = completion({"content": text})
    same(data)
    one_char_chunks = [
        {"id": "chatcmpl-7", "choices": [{"index": 0, "delta": {"content": c}, "finish_reason": None}]}
        for c in text
    ]
    done = {"id": "chatcmpl-7", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    usage = {"id": "chatcmpl-7", "choices": [], "usage": data["usage"]}
    events = translate([*one_char_chunks, done, usage])
    assert sdk_message(events) == unstreamed(data)


def test_tool_calls_stream_their_arguments_as_input_json_deltas() -> None:
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        {"id": "", "type": "function", "function": {"name": "lookup", "arguments": ""}},
    ]
    events = same(completion({"content": "Checking.", "tool_calls": calls}, "tool_calls"), size=4)
    partial = [
        d["delta"]["partial_json"] for n, d in events if d.get("delta", {}).get("type") == "input_json_delta"
    ]
    assert "".join(partial) == '{"city": "Paris"}' and len(partial) == 5
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_stop_sequence_refusal_and_length() -> None:
    same(completion({"content": "one two"}, "stop", stopping_word="END"), stop_sequences=["END"])
    same(completion({"content": None, "refusal": "I can't help with that."}))
    same(completion({"content": "cut"}, "length"))


def test_llama_cpp_cache_counts_from_timings() -> None:
    data = completion({"content": "hi"})
    data["usage"] = {"prompt_tokens": 30, "completion_tokens": 2}
    data["timings"] = {"cache_n": 12}
    parts = list(chunks(data))
    parts[-1]["timings"] = data["timings"]
    events = translate(parts)
    assert sdk_message(events) == unstreamed(data)
    assert events[-2][1]["usage"]["cache_read_input_tokens"] == 12


def test_arguments_that_are_not_an_object_fail_at_the_end() -> None:
    bad = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1, 2]"}}]
    t = Translator(model="m", params={}, upstream="up")
    for part in chunks(completion({"tool_calls": bad}, "tool_calls")):
        list(t.chunk(part))  # streamed as they came
    with pytest.raises(exceptions.BackendError, match="not a JSON object") as info:
        list(t.end())
    assert info.value.status == 502


def test_an_error_chunk_raises_its_error() -> None:
    t = Translator(model="m", params={}, upstream="up")
    list(t.chunk({"id": "x", "choices": [{"index": 0, "delta": {"content": "a"}}]}))
    with pytest.raises(exceptions.BackendError, match="context overflow") as info:
        list(
            t.chunk({"error": {"message": "context overflow", "type": "invalid_request_error", "code": 400}})
        )
    assert (info.value.status, info.value.error_type) == (400, "invalid_request_error")


def test_an_empty_stream_is_an_error() -> None:
    with pytest.raises(exceptions.BackendError, match="empty stream"):
        translate([])


def test_chunks_helper_round_trips() -> None:
    data = completion({"content": "x y", "reasoning_content": "r"})
    assert json.dumps(list(chunks(data)))  # JSON-ready


@pytest.mark.parametrize("text", ["\n\n", "<thi", "  "])
def test_text_held_at_the_start_comes_before_a_tool_call(text: str) -> None:
    calls = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    same(completion({"content": text, "tool_calls": calls}, "tool_calls"))
    same(completion({"content": text, "reasoning_content": "hm", "tool_calls": calls}, "tool_calls"))
