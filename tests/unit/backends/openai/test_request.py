"""Messages request -> chat completions request, with plain dicts."""

from __future__ import annotations

from typing import Any

import pytest

from batchd import params
from batchd.backends.openai import request as openai_request
from batchd.backends.openai.request import Untranslatable, to_chat
from batchd.config.routes import ReasoningMode
from tests.unit.conftest import make_pdf


def chat(**extra: Any) -> dict[str, Any]:
    p = {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}], **extra}
    return to_chat(params.prepare(p), model="qwen")


def test_minimal() -> None:
    body = chat()
    assert body == {
        "model": "qwen",
        "max_tokens": 100,
        "stream": False,
        "messages": [{"role": "user", "content": "Hi"}],
        "chat_template_kwargs": {"enable_thinking": False},
    }


def test_system_string_and_blocks() -> None:
    assert chat(system="Be brief.")["messages"][0] == {"role": "system", "content": "Be brief."}
    blocks = [
        {"type": "text", "text": "A"},
        {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}},
    ]
    assert chat(system=blocks)["messages"][0] == {"role": "system", "content": "A\n\nB"}


def test_multi_turn_and_sampling() -> None:
    body = chat(
        messages=[
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": [{"type": "text", "text": "two"}]},
            {
                "role": "user",
                "content": [{"type": "text", "text": "three"}, {"type": "text", "text": "four"}],
            },
        ],
        temperature=0.5,
        top_p=0.9,
        top_k=40,
        stop_sequences=["END", "STOP"],
        metadata={"user_id": "u-1"},
    )
    assert body["messages"] == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three\n\nfour"},
    ]
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.5, 0.9, 40)
    assert body["stop"] == ["END", "STOP"]
    assert body["user"] == "u-1"


def test_images_base64_and_url() -> None:
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.invalid/cat.jpg"}},
        {"type": "text", "text": "What is this?"},
    ]
    parts = chat(messages=[{"role": "user", "content": content}])["messages"][0]["content"]
    assert parts == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.jpg"}},
        {"type": "text", "text": "What is this?"},
    ]


def test_documents_text_pdf_and_content() -> None:
    content = [
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "plain body"},
            "title": "T",
        },
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": make_pdf("pdf words")},
        },
        {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "inner"}]}},
        {"type": "text", "text": "Summarise"},
    ]
    text = chat(messages=[{"role": "user", "content": content}])["messages"][0]["content"]
    assert text.startswith("Title: T\nplain body\n\n")
    assert "pdf words" in text
    assert text.endswith("inner\n\nSummarise")


def test_tools_and_tool_choice() -> None:
    tools = [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": {"type": "object", "properties": {}},
        }
    ]
    body = chat(tools=tools, tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {}},
                "description": "Weather",
            },
        }
    ]
    assert body["tool_choice"] == "auto"
    assert body["parallel_tool_calls"] is False
    assert chat(tools=tools, tool_choice={"type": "any"})["tool_choice"] == "required"
    assert chat(tools=tools, tool_choice={"type": "none"})["tool_choice"] == "none"
    assert chat(tools=tools, tool_choice={"type": "tool", "name": "get_weather"})["tool_choice"] == {
        "type": "function",
        "function": {"name": "get_weather"},
    }


def test_tool_use_round_trip() -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "use the tool", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "down"}],
                    "is_error": True,
                }
            ],
        },
    ]
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    out = chat(messages=messages, tools=tools)["messages"]
    assert out[1] == {
        "role": "assistant",
        "content": "Checking.",
        "reasoning_content": "use the tool",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }
    assert out[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"}
    assert out[3] == {"role": "user", "content": "And tomorrow?"}
    assert out[4]["content"] is None and out[4]["tool_calls"][0]["id"] == "toolu_2"
    assert out[5] == {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: down"}


@pytest.mark.parametrize(
    ("reasoning", "expected"),
    [
        (ReasoningMode.CHAT_TEMPLATE_KWARGS, {"chat_template_kwargs": {"enable_thinking": True}}),
        (ReasoningMode.REASONING_EFFORT, {"reasoning_effort": "low"}),
        (ReasoningMode.BOTH, {"chat_template_kwargs": {"enable_thinking": True}, "reasoning_effort": "low"}),
        (ReasoningMode.NONE, {}),
    ],
)
def test_thinking_styles(reasoning: ReasoningMode, expected: dict[str, Any]) -> None:
    p = params.prepare(
        {
            "model": "m",
            "max_tokens": 2000,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": "Hi"}],
        }
    )
    body = to_chat(p, model="m", reasoning=reasoning)
    assert {k: body[k] for k in ("chat_template_kwargs", "reasoning_effort") if k in body} == expected


def test_effort_from_budget() -> None:
    assert [openai_request.effort_for(b) for b in (None, 1024, 4096, 16000)] == [
        "medium",
        "low",
        "medium",
        "high",
    ]


def test_structured_output() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    for key, value in (
        ("output_format", {"type": "json_schema", "schema": schema}),
        ("output_config", {"format": {"type": "json_schema", "schema": schema}}),
    ):
        assert chat(**{key: value})["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": schema, "strict": True},
        }


def test_ignored_hints_are_not_sent() -> None:
    body = chat(service_tier="auto", cache_control={"type": "ephemeral"})
    assert "service_tier" not in body and "cache_control" not in body


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
            "tools.0: the server tool 'web_search_20250305' cannot be translated",
        ),
        ({"mcp_servers": []}, "mcp_servers: `mcp_servers` cannot be translated"),
        ({"container": "c1"}, "container: `container` cannot be translated"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "citations": {"enabled": True},
                                "source": {"type": "text", "media_type": "text/plain", "data": "x"},
                            }
                        ],
                    }
                ]
            },
            "messages.0.content.0.citations: citations",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "document", "source": {"type": "url", "url": "https://x.invalid/a.pdf"}}
                        ],
                    }
                ]
            },
            "messages.0.content.0.source: a document source of type 'url'",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [
                                    {
                                        "type": "image",
                                        "source": {"type": "url", "url": "https://x.invalid/a.png"},
                                    }
                                ],
                            }
                        ],
                    }
                ]
            },
            "messages.0.content.0.content.0: a 'image' block inside a tool_result",
        ),
        ({"output_config": {"task_budget": 5}}, "output_config.task_budget: `output_config.task_budget`"),
    ],
)
def test_untranslatable_is_a_precise_final_error(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(Untranslatable) as info:
        chat(**extra)
    assert message in info.value.message
    assert info.value.error_type == "invalid_request_error"
    assert info.value.retryable is False
