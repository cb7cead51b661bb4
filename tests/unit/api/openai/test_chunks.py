"""A whole answer as OpenAI's stream chunks (api/openai/chunks.py), read back by the openai SDK's own
stream accumulator: what the SDK rebuilds is the answer the chunks were made from."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk
from openai.types.completion import Completion

from batchd.api.openai import chunks
from batchd.backends.endpoints import chat_out

MESSAGE: dict[str, Any] = {
    "id": "msg_01abc",
    "content": [
        {"type": "thinking", "thinking": "Let me think it over.", "signature": ""},
        {"type": "text", "text": "Two words  and more,\nover lines. "},
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "sea"}},
        {"type": "tool_use", "id": "toolu_2", "name": "fetch", "input": {}},
    ],
    "stop_reason": "tool_use",
    "usage": {"input_tokens": 12, "output_tokens": 9},
}


def events(raw: list[bytes]) -> list[dict[str, Any]]:
    """The JSON of each `data:` event but the last, which must be `[DONE]`."""
    assert raw[-1] == b"data: [DONE]\n\n"
    found = []
    for event in raw[:-1]:
        assert event.startswith(b"data: ") and event.endswith(b"\n\n")
        found.append(orjson.loads(event[6:]))
    return found


@pytest.mark.parametrize("include_usage", [True, False])
def test_the_sdk_rebuilds_the_chat_completion(include_usage: bool) -> None:
    whole = chat_out.to_chat_completion(MESSAGE, model="gpt-x")
    state = ChatCompletionStreamState()
    found = events(list(chunks.chat(whole, include_usage=include_usage)))
    for data in found:
        state.handle_chunk(ChatCompletionChunk.model_validate(data, strict=False))
    final = state.get_final_completion()
    message = final.choices[0].message
    assert message.content == whole["choices"][0]["message"]["content"]
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or ()] == [
        ("toolu_1", "lookup", '{"q":"sea"}'),
        ("toolu_2", "fetch", "{}"),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.id == whole["id"] and final.model == "gpt-x"
    reasoning = "".join(d["choices"][0]["delta"].get("reasoning_content", "") for d in found if d["choices"])
    assert reasoning == "Let me think it over."
    assert found[0]["choices"][0]["delta"]["role"] == "assistant"
    if include_usage:
        assert found[-1]["choices"] == [] and found[-1]["usage"] == whole["usage"]
        assert all(d["usage"] is None for d in found[:-1])
        assert final.usage is not None and final.usage.total_tokens == 21
    else:
        assert all("usage" not in d for d in found)


def test_a_refusal_streams_as_one_delta() -> None:
    refused = {**MESSAGE, "content": [{"type": "text", "text": "I won't."}], "stop_reason": "refusal"}
    whole = chat_out.to_chat_completion(refused, model="gpt-x")
    state = ChatCompletionStreamState()
    for data in events(list(chunks.chat(whole, include_usage=False))):
        state.handle_chunk(ChatCompletionChunk.model_validate(data))
    with pytest.raises(openai.ContentFilterFinishReasonError):  # as the SDK treats OpenAI's own
        state.get_final_completion()
    snapshot = state.current_completion_snapshot
    assert snapshot.choices[0].message.refusal == "I won't."
    assert snapshot.choices[0].message.content is None
    assert snapshot.choices[0].finish_reason == "content_filter"


def test_pieces_give_the_text_back() -> None:
    for text in ("", " ", "one", "  two  words\n\nand\ttabs ", "ünïcode wörds"):
        assert "".join(chunks.pieces(text)) == text
    assert len(chunks.pieces("a b c")) == 3


def test_a_text_completion_streams_each_choice() -> None:
    first = {**MESSAGE, "content": [{"type": "text", "text": "one two"}], "stop_reason": "end_turn"}
    second = {**MESSAGE, "content": [{"type": "text", "text": ""}], "stop_reason": "max_tokens"}
    whole = chat_out.to_text_completion([first, second], model="m")
    found = events(list(chunks.text(whole, include_usage=True)))
    for data in found[:-1]:
        Completion.model_validate(
            {**data, "choices": [{**c, "finish_reason": "stop"} for c in data["choices"]]}
        )
    texts: dict[int, str] = {}
    finish: dict[int, str] = {}
    for data in found[:-1]:
        for choice in data["choices"]:
            texts[choice["index"]] = texts.get(choice["index"], "") + choice["text"]
            if choice["finish_reason"]:
                finish[choice["index"]] = choice["finish_reason"]
    assert texts == {0: "one two", 1: ""}
    assert finish == {0: "stop", 1: "length"}
    assert found[-1]["choices"] == [] and found[-1]["usage"] == whole["usage"]
