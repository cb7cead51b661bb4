"""How the dashboard reads an OpenAI batch's lines (dashboard/render.py, dashboard/usage.py): one
summary per line (chat and completion text, embeddings' size, the error's message wherever OpenAI
puts it), canceled and expired requests as the error file has them, and usage by the body's model."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from batchd import models
from batchd.dashboard import render, usage
from batchd.store import layout
from batchd.store.base import RequestEntry


def reply(body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    return {
        "id": "batch_req_1",
        "custom_id": "c",
        "response": {"status_code": status, "request_id": "r", "body": body},
        "error": None,
    }


CHAT = reply(
    {
        "object": "chat.completion",
        "model": "gpt-x",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello\n  there"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4}},
    }
)
COMPLETION = reply(
    {"object": "text_completion", "model": "inst", "choices": [{"text": " Hi!", "finish_reason": "stop"}]}
)
EMBEDDING = reply(
    {"object": "list", "model": "emb", "data": [{"embedding": [0.1] * 8}], "usage": {"prompt_tokens": 3}}
)
REFUSED = reply({"error": {"message": "Bad model", "type": "invalid_request_error", "code": None}}, 400)
UNRUN = {
    "id": "batch_req_2",
    "custom_id": "c",
    "response": None,
    "error": {"code": "server_error", "message": "boom"},
}


@pytest.mark.parametrize(
    ("line", "summary"),
    [
        (CHAT, "Hello there"),
        (COMPLETION, "Hi!"),
        (EMBEDDING, "embedding, 8 dims"),
        (
            reply({"object": "list", "data": [{"embedding": "AAAA"}, {"embedding": "AAAA"}]}),
            "2 embeddings, base64",
        ),
        (REFUSED, "invalid_request_error: Bad model"),
        (UNRUN, "server_error: boom"),
        (
            reply({"choices": [{"message": {"content": None}, "finish_reason": "tool_calls"}]}),
            "finish_reason: tool_calls",
        ),
    ],
)
def test_each_line_has_a_summary(line: dict[str, Any], summary: str) -> None:
    assert render.openai_summary(line) == summary


def entry(result_type: models.ResultType | None, line: bytes | None) -> RequestEntry:
    state = models.RequestState.PENDING if line is None else models.RequestState.DONE
    return RequestEntry(3, "c", state, result_type, line)


def test_an_entry_is_the_line_of_the_output_or_error_file() -> None:
    wire = render.OpenAIWire("batch_abc", 7)
    ok = render.entry(entry(models.ResultType.SUCCEEDED, orjson.dumps(CHAT) + b"\n"), wire)
    assert ok["result"] == CHAT and ok["error"] is None and ok["openai"]["text"] == "Hello\n  there"
    assert ok["openai"]["prompt_tokens"] == 12 and ok["summary"] == "Hello there"
    stored = layout.render_line("c", orjson.dumps({"type": "canceled"}))
    canceled = render.entry(entry(models.ResultType.CANCELED, stored), wire)
    assert canceled["error"]["type"] == "batch_cancelled" and canceled["openai"] is None
    assert canceled["result"]["custom_id"] == "c" and canceled["result"]["id"].startswith("batch_req_")
    assert canceled["summary"].startswith("batch_cancelled: ")
    pending = render.entry(entry(None, None), wire)
    assert pending["result"] is None and pending["summary"] == "pending"


def test_usage_counts_2xx_lines_by_model() -> None:
    used = usage.Usage()
    for line in (CHAT, CHAT, EMBEDDING, REFUSED, UNRUN):
        used.add_line(orjson.dumps(line))
    used.add_line(layout.render_line("c", orjson.dumps({"type": "expired"})))
    assert used.requests == 6
    assert used.by_model == {
        "gpt-x": {**usage.empty(), "input_tokens": 24, "output_tokens": 10, "cache_read_input_tokens": 8},
        "emb": {**usage.empty(), "input_tokens": 3},
    }
