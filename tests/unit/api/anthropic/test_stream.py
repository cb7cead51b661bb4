"""A Message as stream events: what each event carries, and that the SDK's own accumulator adds
them up to the Message again."""

from __future__ import annotations

from typing import Any

from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message

from batchd.api.anthropic import stream

MESSAGE: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "m",
    "content": [
        {"type": "thinking", "thinking": "Hmm.", "signature": "sig"},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {
            "type": "text",
            "text": "Cited.",
            "citations": [
                {
                    "type": "char_location",
                    "cited_text": "a",
                    "document_index": 0,
                    "document_title": None,
                    "start_char_index": 0,
                    "end_char_index": 1,
                    "file_id": None,
                }
            ],
        },
        {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"a": [1, 2]}},
    ],
    "stop_reason": "refusal",
    "stop_sequence": None,
    "stop_details": {"type": "refusal", "category": "cyber", "explanation": "no"},
    "container": {"id": "container_1", "expires_at": "2026-11-30T00:00:00Z", "skills": None},
    "usage": {
        "input_tokens": 30,
        "output_tokens": 12,
        "cache_creation_input_tokens": 2,
        "cache_read_input_tokens": 5,
        "cache_creation": {"ephemeral_5m_input_tokens": 2, "ephemeral_1h_input_tokens": 0},
        "server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0},
        "service_tier": "standard",
        "output_tokens_details": {"thinking_tokens": 1},
    },
}


def test_message_delta_carries_what_the_sdk_reads_there() -> None:
    events = list(stream.event_data(MESSAGE))
    name, start = events[0]
    assert name == "message_start"
    assert start["message"]["content"] == [] and start["message"]["usage"]["output_tokens"] == 0
    assert start["message"]["stop_details"] is None and start["message"]["container"] is None
    name, delta = events[-2]
    assert name == "message_delta"
    assert delta["delta"] == {
        "stop_reason": "refusal",
        "stop_sequence": None,
        "stop_details": MESSAGE["stop_details"],
        "container": MESSAGE["container"],
    }
    assert delta["usage"] == {
        "input_tokens": 30,
        "cache_creation_input_tokens": 2,
        "cache_read_input_tokens": 5,
        "output_tokens": 12,
        "server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0},
        "output_tokens_details": {"thinking_tokens": 1},
    }
    kinds = [d["delta"]["type"] for n, d in events if n == "content_block_delta"]
    assert kinds == [
        "thinking_delta",
        "signature_delta",
        "input_json_delta",
        "citations_delta",
        "text_delta",
        "input_json_delta",
    ]


def test_the_sdks_accumulator_rebuilds_the_message() -> None:
    snapshot = None
    buffers: dict[int, bytes] = {}
    for name, data in stream.event_data(MESSAGE):
        event = {"type": name, **data}
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=buffers)  # type: ignore[arg-type]
    assert snapshot is not None
    assert snapshot.to_dict() == Message.model_validate(MESSAGE).to_dict()


def test_a_minimal_upstream_message() -> None:
    minimal = {
        "id": "msg_2",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    *_, (_, delta), _ = stream.event_data(minimal)
    assert delta["usage"] == {"input_tokens": 3, "output_tokens": 1}
    assert delta["delta"]["stop_details"] is None and delta["delta"]["container"] is None
