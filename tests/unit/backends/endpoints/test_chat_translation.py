"""Chat completions <-> Messages: the request translated in (chat_in) and the Message out (chat_out)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from batchd import exceptions, params
from batchd.backends.endpoints import chat_in, chat_out


def translate(**body: Any) -> dict[str, Any]:
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return chat_in.to_params({"model": "gpt-x", **body}, model="claude-x")


def test_a_full_request_translates_and_validates_as_messages() -> None:
    body = {
        "model": "gpt-x",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "system", "content": [{"type": "text", "text": "Use tools."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look at this"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "look", "arguments": '{"q": 1}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            {"role": "user", "content": "So?"},
        ],
        "max_completion_tokens": 5000,
        "stop": "END",
        "n": 1,
        "tools": [
            {
                "type": "function",
                "function": {"name": "look", "description": "Looks", "parameters": {"type": "object"}},
            }
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "o", "schema": {"type": "object"}},
        },
        "reasoning_effort": "medium",
        "user": "u-1",
        "stream": True,
        "seed": 7,
    }
    out = chat_in.to_params(body, model="claude-x")
    assert out["system"] == "Be brief.\n\nUse tools."
    assert out["max_tokens"] == 5000
    assert out["stop_sequences"] == ["END"]
    assert out["metadata"] == {"user_id": "u-1"}
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    image, url_image = out["messages"][0]["content"][1:]
    assert image["source"] == {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    assert url_image["source"] == {"type": "url", "url": "https://example.com/cat.png"}
    assert out["messages"][1]["content"][1] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "look",
        "input": {"q": 1},
    }
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "a cat"},
        {"type": "text", "text": "So?"},
    ]
    assert out["tools"] == [{"name": "look", "input_schema": {"type": "object"}, "description": "Looks"}]
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": {"type": "object"}}}
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert "stream" not in out and "seed" not in out
    params.prepare(out)  # valid Messages params


def test_defaults_and_choice_names() -> None:
    assert translate()["max_tokens"] == chat_in.DEFAULT_MAX_TOKENS
    sampled = translate(temperature=0.5, top_p=0.9)
    assert (sampled["temperature"], sampled["top_p"]) == (0.5, 0.9)
    assert translate(max_tokens=7)["max_tokens"] == 7
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert translate(tools=tools, tool_choice="required")["tool_choice"] == {"type": "any"}
    assert translate(tools=tools, tool_choice="auto")["tool_choice"] == {"type": "auto"}
    named = {"type": "function", "function": {"name": "f"}}
    assert translate(tools=tools, tool_choice=named)["tool_choice"] == {"type": "tool", "name": "f"}
    assert translate(tools=tools, tool_choice="none")["tool_choice"] == {"type": "none"}
    assert "tool_choice" not in translate(tool_choice="none")
    assert translate(reasoning_effort="high", max_tokens=3000)["thinking"]["budget_tokens"] == 2999
    assert "thinking" not in translate(reasoning_effort="minimal")
    assert "output_config" not in translate(response_format={"type": "text"})
    defaults = translate(
        frequency_penalty=0, logprobs=False, logit_bias={}, modalities=["text"], stop=["a", "b"]
    )
    assert defaults["stop_sequences"] == ["a", "b"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"n": 2}, "n"),
        ({"logit_bias": {"1": 2}}, "logit_bias"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"logprobs": True}, "logprobs"),
        ({"audio": {"voice": "x"}}, "audio"),
        ({"temperature": 1.5}, "temperature"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"reasoning_effort": "low", "max_tokens": 500}, "reasoning_effort"),
        ({"tools": [{"type": "web_search"}]}, "tools[0]"),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "messages[0].content[0]"),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]}, "messages[1]"),
        ({"messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
        ({"messages": []}, "messages"),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": None}]},
            "messages[1]",
        ),
    ],
)
def test_what_has_no_equivalent_fails_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(exceptions.InvalidLine) as caught:
        translate(**body)
    assert caught.value.param == param
    assert caught.value.message.startswith(param)


def message(content: list[dict[str, Any]], stop: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "id": "msg_abc",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }


def test_a_message_becomes_a_chat_completion() -> None:
    done = chat_out.to_chat_completion(
        message(
            [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "Hello"},
                {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {"q": 1}},
            ],
            stop="tool_use",
            cache_read_input_tokens=4,
            cache_creation_input_tokens=2,
        ),
        model="gpt-x",
    )
    assert done["id"] == "chatcmpl-abc" and done["object"] == "chat.completion" and done["model"] == "gpt-x"
    choice = done["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["index"] == 0 and choice["logprobs"] is None
    msg = choice["message"]
    assert msg["content"] == "Hello" and msg["reasoning_content"] == "hmm" and msg["refusal"] is None
    assert msg["tool_calls"] == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "look", "arguments": orjson.dumps({"q": 1}).decode()},
        }
    ]
    usage = done["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (16, 5, 21)
    assert usage["prompt_tokens_details"]["cached_tokens"] == 4


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons_become_finish_reasons(stop: str, finish: str) -> None:
    done = chat_out.to_chat_completion(message([{"type": "text", "text": "x"}], stop=stop), model="m")
    assert done["choices"][0]["finish_reason"] == finish
    if stop == "refusal":
        assert done["choices"][0]["message"]["refusal"] == "x"
        assert done["choices"][0]["message"]["content"] is None


def test_openai_sdk_parses_the_chat_completion() -> None:
    from openai.types.chat import ChatCompletion

    done = chat_out.to_chat_completion(message([{"type": "text", "text": "x"}]), model="m")
    parsed = ChatCompletion.model_validate(done, strict=False)
    assert parsed.choices[0].message.content == "x" and parsed.usage is not None
    assert parsed.usage.total_tokens == 15
