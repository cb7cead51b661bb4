"""Tests of batchd.params: validation as the Messages API does it, and the shorthand."""

from __future__ import annotations

import collections.abc
import copy
import importlib
import importlib.util
from typing import Any

import pydantic
import pytest

from batchd import exceptions, params
from batchd.params import shorthand as params_shorthand

MODEL = "claude-sonnet-4-5-20250929"
PDF_DATA = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK"
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search"}
CODE_EXECUTION = {"type": "code_execution_20250825", "name": "code_execution"}


def request(**fields: Any) -> dict[str, Any]:
    """A valid minimal request with `fields` added or replaced."""
    base: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 2048,
        "messages": [{"role": "user", "content": "Hello"}],
    }
    base.update(fields)
    return base


def user(*blocks: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(blocks)}]


def error_of(value: Any, *, strict: bool = False) -> str:
    with pytest.raises(exceptions.InvalidParams) as info:
        params.prepare(value, strict=strict)
    assert info.value.status == 400
    assert info.value.error_type == "invalid_request_error"
    return info.value.message


# -- the seed document's params, verbatim except for the PDF bytes ---------------------

SEEDS: dict[str, dict[str, Any]] = {
    "request-1": {
        "model": MODEL,
        "max_tokens": 2048,
        "thinking": {"type": "enabled"},
        "messages": [{"role": "user", "content": "Solve this problem..."}],
    },
    "request-2": {
        "model": MODEL,
        "max_tokens": 2048,
        "web_search": {"type": "enabled"},
        "messages": [{"role": "user", "content": "What are the latest news?"}],
    },
    "thinking-1": {
        "model": MODEL,
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "messages": [{"role": "user", "content": "Complex reasoning task"}],
    },
    "citations-1": {
        "model": MODEL,
        "max_tokens": 2048,
        "citations": {"type": "enabled"},
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {
                            "type": "base64",
                            "media_type": "application/pdf",
                            "data": PDF_DATA,
                        },
                    },
                    {"type": "text", "text": "Summarize with citations"},
                ],
            }
        ],
    },
    "web-search-1": {
        "model": MODEL,
        "max_tokens": 2048,
        "web_search": {"type": "enabled"},
        "messages": [{"role": "user", "content": "Latest AI news"}],
    },
    "combined-1": {
        "model": MODEL,
        "max_tokens": 4096,
        "thinking": {"type": "enabled"},
        "web_search": {"type": "enabled"},
        "code_execution": {"type": "enabled"},
        "messages": [{"role": "user", "content": "Research and code solution"}],
    },
    "request-7": {
        "model": MODEL,
        "max_tokens": 2048,
        "thinking": {"type": "enabled"},
        "messages": [{"role": "user", "content": "Task 7: ..."}],
    },
    "async-1": {
        "model": MODEL,
        "max_tokens": 2048,
        "thinking": {"type": "enabled"},
        "messages": [{"role": "user", "content": "Task 1"}],
    },
    "async-2": {
        "model": MODEL,
        "max_tokens": 2048,
        "web_search": {"type": "enabled"},
        "messages": [{"role": "user", "content": "Task 2"}],
    },
}


def _expanded(name: str) -> dict[str, Any]:
    seed = SEEDS[name]
    out = {k: v for k, v in seed.items() if k not in params_shorthand.KEYS}
    budget = {"type": "enabled", "budget_tokens": 1024}
    if name in ("request-1", "request-7", "async-1", "combined-1"):
        out["thinking"] = budget
    if name in ("request-2", "web-search-1", "async-2"):
        out["tools"] = [WEB_SEARCH]
    if name == "combined-1":
        out["tools"] = [WEB_SEARCH, CODE_EXECUTION]
    if name == "citations-1":
        document, text = seed["messages"][0]["content"]
        cited = {**document, "citations": {"enabled": True}}
        out["messages"] = [{"role": "user", "content": [cited, text]}]
    return out


SEED_STRICT_ERRORS = {
    "request-1": "thinking.enabled.budget_tokens: Field required",
    "request-2": "web_search: Extra inputs are not permitted",
    "thinking-1": None,  # already a valid Messages API request
    "citations-1": "citations: Extra inputs are not permitted",
    "web-search-1": "web_search: Extra inputs are not permitted",
    "combined-1": "thinking.enabled.budget_tokens: Field required",
    "request-7": "thinking.enabled.budget_tokens: Field required",
    "async-1": "thinking.enabled.budget_tokens: Field required",
    "async-2": "web_search: Extra inputs are not permitted",
}


@pytest.mark.parametrize("name", SEEDS)
def test_seed_params_expand_in_lenient_mode(name: str) -> None:
    assert params.prepare(SEEDS[name]) == _expanded(name)


@pytest.mark.parametrize("name", SEEDS)
def test_seed_params_in_strict_mode_fail_as_the_real_api(name: str) -> None:
    expected = SEED_STRICT_ERRORS[name]
    if expected is None:
        assert params.prepare(SEEDS[name], strict=True) is SEEDS[name]
    else:
        assert error_of(SEEDS[name], strict=True) == expected


# -- the expanded seeds are valid for the official SDK's schema ------------------------


Schemas = list[tuple[pydantic.TypeAdapter[Any], frozenset[str]]]


def _sdk_schemas() -> Schemas:
    """TypeAdapters for the SDK's MessageCreateParamsNonStreaming, with their keys."""
    schemas = []
    for name in (
        "anthropic.types.message_create_params",
        "anthropic.types.beta.message_create_params",
    ):
        typed_dict = importlib.import_module(name).MessageCreateParamsNonStreaming
        keys = typed_dict.__required_keys__ | typed_dict.__optional_keys__
        schemas.append((pydantic.TypeAdapter(typed_dict), frozenset(keys)))
    return schemas


@pytest.fixture(scope="module")
def sdk_schemas() -> Schemas:
    """The official SDK's own params schemas (the acceptance tests import the SDK anyway)."""
    pytest.importorskip("anthropic")
    return _sdk_schemas()


def _sdk_validate(schemas: Schemas, value: dict[str, Any]) -> None:
    def consume(item: Any) -> Any:
        # The SDK types lists as Iterable, which pydantic validates lazily.
        if isinstance(item, dict):
            return {k: consume(v) for k, v in item.items()}
        if isinstance(item, list | collections.abc.Iterator):
            return [consume(v) for v in item]
        return item

    for adapter, keys in schemas:
        consume(adapter.validate_python(value))
        # TypedDicts ignore unknown keys; the API does not.
        assert set(value) <= keys


@pytest.mark.parametrize("name", SEEDS)
def test_expanded_seed_params_match_the_sdk_schema(name: str, sdk_schemas: Schemas) -> None:
    _sdk_validate(sdk_schemas, params.prepare(SEEDS[name]))


def test_the_sdk_schema_check_rejects_the_unexpanded_shorthand(
    sdk_schemas: Schemas,
) -> None:
    with pytest.raises(pydantic.ValidationError, match="budget_tokens"):
        _sdk_validate(sdk_schemas, SEEDS["request-1"])
    with pytest.raises(AssertionError):
        _sdk_validate(sdk_schemas, SEEDS["request-2"])


# -- valid requests pass unchanged -----------------------------------------------------

IMAGE = {
    "type": "image",
    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
}
TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}

VALID: dict[str, dict[str, Any]] = {
    "minimal": request(),
    "text blocks": request(messages=user({"type": "text", "text": "Hi"})),
    "image url and file": request(
        messages=user(
            IMAGE,
            {"type": "image", "source": {"type": "url", "url": "https://x/a.png"}},
            {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
            {"type": "text", "text": "Compare these"},
        )
    ),
    "documents": request(
        messages=user(
            {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "A."},
                "title": "t",
                "context": None,
                "citations": {"enabled": True},
            },
            {
                "type": "document",
                "source": {
                    "type": "content",
                    "content": [{"type": "text", "text": "A"}],
                },
            },
            {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}},
            {"type": "document", "source": {"type": "file", "file_id": "file_1"}},
            {"type": "text", "text": "Summarise"},
        )
    ),
    "tool round trip": request(
        tools=[TOOL, {"type": "custom", **TOOL, "name": "other-tool_2"}],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "Sunny"}, IMAGE],
                        "is_error": False,
                    }
                ],
            },
        ],
    ),
    "tool_choice tool": request(tools=[TOOL], tool_choice={"type": "tool", "name": "get_weather"}),
    "server tools": request(
        tools=[
            WEB_SEARCH | {"max_uses": 3, "allowed_domains": ["example.com"]},
            CODE_EXECUTION,
            {"type": "web_fetch_20250910", "name": "web_fetch"},
            {"type": "bash_20250124", "name": "bash"},
            {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
            {"type": "memory_20250818", "name": "memory"},
            {"type": "mcp_toolset", "mcp_server_name": "srv"},
            {"type": "tool_search_tool_bm25", "name": "tool_search_tool_bm25"},
        ],
        tool_choice={"type": "tool", "name": "anything_from_the_mcp_toolset"},
    ),
    "thinking with history": request(
        thinking={"type": "enabled", "budget_tokens": 1024, "display": "summarized"},
        temperature=1,
        top_p=0.95,
        messages=[
            {"role": "user", "content": "Q"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "A"},
                ],
            },
            {"role": "user", "content": "Q2"},
        ],
    ),
    "adaptive and disabled thinking": request(thinking={"type": "adaptive"}),
    "disabled thinking with sampling": request(
        thinking={"type": "disabled"},
        temperature=0.2,
        top_k=5,
        tool_choice={"type": "any"},
    ),
    "sampling and stops": request(
        system="Be brief.",
        temperature=0,
        top_p=1.0,
        top_k=0,
        stop_sequences=["END", "\n\n"],
    ),
    "system blocks": request(
        system=[
            {
                "type": "text",
                "text": "Be brief.",
                "cache_control": {"type": "ephemeral"},
            }
        ]
    ),
    "prefill and same-role turns": request(
        messages=[
            {"role": "assistant", "content": "I start"},
            {"role": "user", "content": "one"},
            {"role": "user", "content": "two"},
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "The answer is ("}],
            },
        ]
    ),
    "empty final assistant": request(
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": ""},
        ]
    ),
    "system role message": request(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ]
    ),
    "type-only blocks": request(
        messages=[
            {"role": "user", "content": "Search"},
            {
                "role": "assistant",
                "content": [
                    {"type": "server_tool_use", "id": "srv_1", "name": "web_search"},
                    {"type": "web_search_tool_result", "tool_use_id": "srv_1"},
                    {"type": "text", "text": "Found it"},
                ],
            },
            {"role": "user", "content": [{"type": "container_upload", "file_id": "f"}]},
        ]
    ),
    "other known keys": request(
        metadata={"user_id": "u-1"},
        stream=False,
        service_tier="auto",
        speed=None,
        inference_geo="us",
        container="container_1",
        context_management={"edits": []},
        mcp_servers=[{"type": "url", "url": "https://mcp", "name": "m"}],
        output_config={"effort": "low"},
        output_format=None,
        diagnostics={"previous_message_id": "msg_1"},
        cache_control={"type": "ephemeral"},
        billing_policy={"type": "billing_policy", "bill_to": "self"},
        fallbacks="default",
    ),
}


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("name", VALID)
def test_valid_params_are_returned_as_they_are(name: str, strict: bool) -> None:
    snapshot = copy.deepcopy(VALID[name])
    assert params.prepare(VALID[name], strict=strict) is VALID[name]
    assert VALID[name] == snapshot


# -- each rule rejects with the real API's message, at the right path ------------------

BAD_TYPE = "Input tag 'foo' found using 'type' does not match any of the expected tags: "
IMAGE_TYPES = "Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"


def _bad_image(**source: Any) -> dict[str, Any]:
    return {"type": "image", "source": source}


def _thinking(**fields: Any) -> dict[str, Any]:
    return request(thinking={"type": "enabled", "budget_tokens": 1024}, **fields)


REJECTED: list[tuple[str, Any, str]] = [
    ("params not object", [], "params: Input should be a valid dictionary"),
    ("no model", {"max_tokens": 1, "messages": []}, "model: Field required"),
    ("no max_tokens", {"model": "m", "messages": []}, "max_tokens: Field required"),
    ("no messages", {"model": "m", "max_tokens": 1}, "messages: Field required"),
    ("model type", request(model=5), "model: Input should be a valid string"),
    (
        "model empty",
        request(model=""),
        "model: String should have at least 1 character",
    ),
    (
        "max_tokens str",
        request(max_tokens="9"),
        "max_tokens: Input should be a valid integer",
    ),
    (
        "max_tokens bool",
        request(max_tokens=True),
        "max_tokens: Input should be a valid integer",
    ),
    (
        "max_tokens 0",
        request(max_tokens=0),
        "max_tokens: Input should be greater than or equal to 1",
    ),
    ("messages type", request(messages={}), "messages: Input should be a valid list"),
    (
        "messages empty",
        request(messages=[]),
        "messages: List should have at least 1 item after validation, not 0",
    ),
    (
        "message type",
        request(messages=[5]),
        "messages.0: Input should be a valid dictionary",
    ),
    (
        "no role",
        request(messages=[{"content": "x"}]),
        "messages.0.role: Field required",
    ),
    (
        "bad role",
        request(messages=[{"role": "bot", "content": "x"}]),
        "messages.0.role: Input should be 'user', 'assistant' or 'system'",
    ),
    (
        "no content",
        request(messages=[{"role": "user"}]),
        "messages.0.content: Field required",
    ),
    (
        "content type",
        request(messages=[{"role": "user", "content": 5}]),
        "messages.0.content: Input should be a valid string or a list of content blocks",
    ),
    (
        "empty user string",
        request(messages=[{"role": "user", "content": ""}]),
        "messages.0: user messages must have non-empty content",
    ),
    (
        "empty user list",
        request(messages=[{"role": "user", "content": []}]),
        "messages.0: user messages must have non-empty content",
    ),
    (
        "empty assistant before the end",
        request(
            messages=[
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": ""},
                {"role": "user", "content": "b"},
            ]
        ),
        "messages.1: all messages must have non-empty content except for the optional "
        "final assistant message",
    ),
    (
        "prefill trailing space",
        request(
            messages=[
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b "},
            ]
        ),
        "messages.1: final assistant content cannot end with trailing whitespace",
    ),
    (
        "prefill block trailing newline",
        request(
            messages=[
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": [{"type": "text", "text": "b\n"}]},
            ]
        ),
        "messages.1: final assistant content cannot end with trailing whitespace",
    ),
    (
        "blank user string",
        request(messages=[{"role": "user", "content": "  \n"}]),
        "messages.0.content: text content blocks must contain non-whitespace text",
    ),
    (
        "unknown block type",
        request(messages=user({"type": "text", "text": "a"}, {"type": "foo"})),
        "messages.0.content.1.type: " + BAD_TYPE + "'text', 'image', 'document', ",
    ),
    (
        "block without type",
        request(messages=user({"text": "a"})),
        "messages.0.content.0: Unable to extract tag using discriminator 'type'",
    ),
    (
        "block not object",
        request(messages=user("a")),
        "messages.0.content.0: Input should be a valid dictionary",
    ),
    (
        "empty text block",
        request(messages=user({"type": "text", "text": ""})),
        "messages.0.content.0.text: text content blocks must be non-empty",
    ),
    (
        "blank text block",
        request(messages=user({"type": "text", "text": " "})),
        "messages.0.content.0.text: text content blocks must contain non-whitespace text",
    ),
    (
        "text missing",
        request(messages=user({"type": "text"})),
        "messages.0.content.0.text.text: Field required",
    ),
    (
        "text not string",
        request(messages=user({"type": "text", "text": 5})),
        "messages.0.content.0.text.text: Input should be a valid string",
    ),
    (
        "text citations type",
        request(messages=user({"type": "text", "text": "a", "citations": {}})),
        "messages.0.content.0.text.citations: Input should be a valid list",
    ),
    (
        "image media type",
        request(messages=user(_bad_image(type="base64", media_type="image/bmp", data="x"))),
        "messages.0.content.0.image.source.base64.media_type: " + IMAGE_TYPES,
    ),
    (
        "image data missing",
        request(messages=user(_bad_image(type="base64", media_type="image/png"))),
        "messages.0.content.0.image.source.base64.data: Field required",
    ),
    (
        "image source missing",
        request(messages=user({"type": "image"})),
        "messages.0.content.0.image.source: Field required",
    ),
    (
        "image source type",
        request(messages=user(_bad_image(type="ftp"))),
        "messages.0.content.0.image.source.type: Input tag 'ftp' found using 'type' "
        "does not match any of the expected tags: 'base64', 'url', 'file'",
    ),
    (
        "image url missing",
        request(messages=user(_bad_image(type="url"))),
        "messages.0.content.0.image.source.url.url: Field required",
    ),
    (
        "image file_id type",
        request(messages=user(_bad_image(type="file", file_id=1))),
        "messages.0.content.0.image.source.file.file_id: Input should be a valid string",
    ),
    (
        "document pdf media type",
        request(
            messages=user(
                {
                    "type": "document",
                    "source": {
                        "type": "base64",
                        "media_type": "text/plain",
                        "data": "x",
                    },
                }
            )
        ),
        "messages.0.content.0.document.source.base64.media_type: Input should be 'application/pdf'",
    ),
    (
        "document text data",
        request(
            messages=user(
                {
                    "type": "document",
                    "source": {"type": "text", "media_type": "text/plain"},
                }
            )
        ),
        "messages.0.content.0.document.source.text.data: Field required",
    ),
    (
        "document content block type",
        request(
            messages=user(
                {
                    "type": "document",
                    "source": {"type": "content", "content": [{"type": "document"}]},
                }
            )
        ),
        "messages.0.content.0.document.source.content.content.0.type: Input tag "
        "'document' found using 'type' does not match any of the expected tags: "
        "'text', 'image'",
    ),
    (
        "document citations type",
        request(
            messages=user(
                {
                    "type": "document",
                    "source": {"type": "file", "file_id": "f"},
                    "citations": True,
                }
            )
        ),
        "messages.0.content.0.document.citations: Input should be a valid dictionary",
    ),
    (
        "document citations enabled",
        request(
            messages=user(
                {
                    "type": "document",
                    "source": {"type": "file", "file_id": "f"},
                    "citations": {"enabled": "yes"},
                }
            )
        ),
        "messages.0.content.0.document.citations.enabled: Input should be a valid boolean",
    ),
    (
        "document title",
        request(
            messages=user(
                {
                    "type": "document",
                    "source": {"type": "file", "file_id": "f"},
                    "title": 1,
                }
            )
        ),
        "messages.0.content.0.document.title: Input should be a valid string",
    ),
    (
        "tool_use id",
        request(messages=user({"type": "tool_use", "name": "t", "input": {}})),
        "messages.0.content.0.tool_use.id: Field required",
    ),
    (
        "tool_use input",
        request(messages=user({"type": "tool_use", "id": "i", "name": "t", "input": []})),
        "messages.0.content.0.tool_use.input: Input should be a valid dictionary",
    ),
    (
        "tool_result id",
        request(messages=user({"type": "tool_result", "content": "x"})),
        "messages.0.content.0.tool_result.tool_use_id: Field required",
    ),
    (
        "tool_result nested image",
        request(
            messages=user(
                {
                    "type": "tool_result",
                    "tool_use_id": "t",
                    "content": [_bad_image(type="base64", media_type="x", data="y")],
                }
            )
        ),
        "messages.0.content.0.tool_result.content.0.image.source.base64.media_type: " + IMAGE_TYPES,
    ),
    (
        "tool_result content type",
        request(messages=user({"type": "tool_result", "tool_use_id": "t", "content": 5})),
        "messages.0.content.0.tool_result.content: "
        "Input should be a valid string or a list of content blocks",
    ),
    (
        "tool_result is_error",
        request(messages=user({"type": "tool_result", "tool_use_id": "t", "is_error": "no"})),
        "messages.0.content.0.tool_result.is_error: Input should be a valid boolean",
    ),
    (
        "thinking block signature",
        request(
            messages=[
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": [{"type": "thinking", "thinking": "t"}],
                },
            ]
        ),
        "messages.1.content.0.thinking.signature: Field required",
    ),
    (
        "redacted thinking data",
        request(messages=user({"type": "redacted_thinking"})),
        "messages.0.content.0.redacted_thinking.data: Field required",
    ),
    (
        "system message content",
        request(
            messages=[
                {"role": "system", "content": 5},
                {"role": "user", "content": "x"},
            ]
        ),
        "messages.0.content: Input should be a valid string or a list of content blocks",
    ),
    (
        "system type",
        request(system=5),
        "system: Input should be a valid string or a list of text blocks",
    ),
    (
        "system block type",
        request(system=[IMAGE]),
        "system.0.type: Input should be 'text'",
    ),
    (
        "system empty block",
        request(system=[{"type": "text", "text": ""}]),
        "system.0: text content blocks must be non-empty",
    ),
    (
        "stop_sequences type",
        request(stop_sequences="END"),
        "stop_sequences: Input should be a valid list",
    ),
    (
        "stop_sequences item",
        request(stop_sequences=["a", 1]),
        "stop_sequences.1: Input should be a valid string",
    ),
    (
        "temperature type",
        request(temperature="hot"),
        "temperature: Input should be a valid number",
    ),
    (
        "temperature bool",
        request(temperature=True),
        "temperature: Input should be a valid number",
    ),
    (
        "temperature high",
        request(temperature=1.5),
        "temperature: Input should be less than or equal to 1",
    ),
    (
        "temperature low",
        request(temperature=-0.1),
        "temperature: Input should be greater than or equal to 0",
    ),
    ("top_p high", request(top_p=2), "top_p: Input should be less than or equal to 1"),
    ("top_k type", request(top_k=1.5), "top_k: Input should be a valid integer"),
    (
        "top_k low",
        request(top_k=-1),
        "top_k: Input should be greater than or equal to 0",
    ),
    (
        "metadata type",
        request(metadata=[]),
        "metadata: Input should be a valid dictionary",
    ),
    (
        "metadata user_id type",
        request(metadata={"user_id": 5}),
        "metadata.user_id: Input should be a valid string",
    ),
    (
        "metadata user_id length",
        request(metadata={"user_id": "u" * 257}),
        "metadata.user_id: String should have at most 256 characters",
    ),
    (
        "stream",
        request(stream=True),
        "stream: batch requests cannot be streamed; omit `stream` or set it to false",
    ),
    ("stream type", request(stream="no"), "stream: Input should be a valid boolean"),
    (
        "service_tier",
        request(service_tier="priority"),
        "service_tier: Input should be 'auto' or 'standard_only'",
    ),
    ("speed", request(speed="slow"), "speed: Input should be 'standard' or 'fast'"),
    (
        "container type",
        request(container=5),
        "container: Input should be a valid string or dictionary",
    ),
    (
        "mcp_servers type",
        request(mcp_servers={}),
        "mcp_servers: Input should be a valid list",
    ),
    (
        "output_config type",
        request(output_config="json"),
        "output_config: Input should be a valid dictionary",
    ),
    (
        "billing a user profile",
        request(billing_policy={"type": "billing_policy", "bill_to": "user_profile"}),
        "billing_policy.bill_to: Message Batches does not support billing a user "
        'profile; omit billing_policy or set "bill_to": "self"',
    ),
    (
        "thinking type",
        request(thinking="on"),
        "thinking: Input should be a valid dictionary",
    ),
    (
        "thinking without type",
        request(thinking={}),
        "thinking: Unable to extract tag using discriminator 'type'",
    ),
    (
        "thinking tag",
        request(thinking={"type": "maybe"}),
        "thinking.type: Input tag 'maybe' found using 'type' does not match any of the "
        "expected tags: 'enabled', 'disabled', 'between_tools', 'adaptive'",
    ),
    (
        "thinking budget low",
        request(thinking={"type": "enabled", "budget_tokens": 512}),
        "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
    ),
    (
        "thinking budget type",
        request(thinking={"type": "enabled", "budget_tokens": None}),
        "thinking.enabled.budget_tokens: Input should be a valid integer",
    ),
    (
        "thinking budget over max_tokens",
        request(max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 2048}),
        "thinking.enabled.budget_tokens: `max_tokens` must be greater than `thinking.budget_tokens`",
    ),
    (
        "thinking display",
        request(thinking={"type": "adaptive", "display": "full"}),
        "thinking.adaptive.display: Input should be 'summarized', 'omitted' or 'updates'",
    ),
    (
        "thinking and temperature",
        _thinking(temperature=0.5),
        "temperature: `temperature` may only be set to 1 when thinking is enabled",
    ),
    (
        "thinking and top_k",
        _thinking(top_k=5),
        "top_k: `top_k` may not be set when thinking is enabled",
    ),
    (
        "adaptive thinking and top_k",
        request(thinking={"type": "adaptive"}, top_k=5),
        "top_k: `top_k` may not be set when thinking is enabled",
    ),
    (
        "thinking and top_p",
        _thinking(top_p=0.9),
        "top_p: `top_p` must be greater than or equal to 0.95 or unset when thinking is enabled",
    ),
    (
        "thinking and forced tool use",
        _thinking(tools=[TOOL], tool_choice={"type": "any"}),
        "tool_choice: Thinking may not be enabled when tool_choice forces tool use.",
    ),
    ("tools type", request(tools={}), "tools: Input should be a valid list"),
    ("tool type", request(tools=[5]), "tools.0: Input should be a valid dictionary"),
    (
        "tool name pattern",
        request(tools=[TOOL | {"name": "get weather"}]),
        "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'",
    ),
    (
        "tool name length",
        request(tools=[TOOL | {"name": "t" * 129}]),
        "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'",
    ),
    (
        "tool name missing",
        request(tools=[{"input_schema": {"type": "object"}}]),
        "tools.0.custom.name: Field required",
    ),
    (
        "tool input_schema missing",
        request(tools=[{"type": "custom", "name": "t"}]),
        "tools.0.custom.input_schema: Field required",
    ),
    (
        "tool input_schema type",
        request(tools=[TOOL | {"input_schema": {"type": "array"}}]),
        "tools.0.custom.input_schema.type: Input should be 'object'",
    ),
    (
        "tool input_schema without type",
        request(tools=[TOOL | {"input_schema": {}}]),
        "tools.0.custom.input_schema.type: Field required",
    ),
    (
        "tool description",
        request(tools=[TOOL | {"description": 5}]),
        "tools.0.custom.description: Input should be a valid string",
    ),
    (
        "unknown tool type",
        request(tools=[{"type": "foo", "name": "x"}]),
        "tools.0.type: " + BAD_TYPE + "'custom', 'bash_20241022', ",
    ),
    (
        "server tool name",
        request(tools=[{"type": "web_search_20250305"}]),
        "tools.0.web_search_20250305.name: Field required",
    ),
    (
        "server tool option",
        request(tools=[WEB_SEARCH | {"max_uses": 0}]),
        "tools.0.web_search_20250305.max_uses: Input should be greater than or equal to 1",
    ),
    (
        "mcp toolset server",
        request(tools=[{"type": "mcp_toolset"}]),
        "tools.0.mcp_toolset.mcp_server_name: Field required",
    ),
    (
        "duplicate tool names",
        request(tools=[TOOL, WEB_SEARCH, TOOL]),
        "tools.2.name: Tool names must be unique; 'get_weather' is also the name of tools.0",
    ),
    (
        "tool_choice type",
        request(tool_choice="auto"),
        "tool_choice: Input should be a valid dictionary",
    ),
    (
        "tool_choice tag",
        request(tool_choice={"type": "sometimes"}),
        "tool_choice.type: Input tag 'sometimes' found using 'type' does not match "
        "any of "
        "the expected tags: 'auto', 'any', 'tool', 'none'",
    ),
    (
        "tool_choice name missing",
        request(tools=[TOOL], tool_choice={"type": "tool"}),
        "tool_choice.tool.name: Field required",
    ),
    (
        "tool_choice unknown tool",
        request(tools=[TOOL], tool_choice={"type": "tool", "name": "nope"}),
        "tool_choice.tool.name: Tool 'nope' not found in tools",
    ),
    (
        "tool_choice parallel flag",
        request(tool_choice={"type": "auto", "disable_parallel_tool_use": "yes"}),
        "tool_choice.auto.disable_parallel_tool_use: Input should be a valid boolean",
    ),
]


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize(("value", "expected"), [r[1:] for r in REJECTED], ids=[r[0] for r in REJECTED])
def test_invalid_params_are_rejected_at_their_path(value: Any, expected: str, strict: bool) -> None:
    message = error_of(value, strict=strict)
    # The union-tag messages list every expected tag; the tables give their start.
    if "expected tags: " in expected and expected.endswith(", "):
        assert message.startswith(expected)
    else:
        assert message == expected


STRICT_ONLY: list[tuple[str, dict[str, Any], str]] = [
    ("unknown top-level key", request(foo=1), "foo: Extra inputs are not permitted"),
    (
        "betas is a header",
        request(betas=["x"]),
        "betas: Extra inputs are not permitted",
    ),
    (
        "message key",
        request(messages=[{"role": "user", "content": "x", "name": "bob"}]),
        "messages.0.name: Extra inputs are not permitted",
    ),
    (
        "text block key",
        request(messages=user({"type": "text", "text": "a", "lang": "en"})),
        "messages.0.content.0.text.lang: Extra inputs are not permitted",
    ),
    (
        "image source key",
        request(messages=user(_bad_image(type="url", url="u", alt="a"))),
        "messages.0.content.0.image.source.url.alt: Extra inputs are not permitted",
    ),
    (
        "metadata key",
        request(metadata={"user_id": "u", "team": "t"}),
        "metadata.team: Extra inputs are not permitted",
    ),
    (
        "thinking key",
        request(thinking={"type": "disabled", "budget_tokens": 1024}),
        "thinking.disabled.budget_tokens: Extra inputs are not permitted",
    ),
    (
        "custom tool key",
        request(tools=[TOOL | {"parameters": {}}]),
        "tools.0.custom.parameters: Extra inputs are not permitted",
    ),
    (
        "tool_choice key",
        request(tool_choice={"type": "none", "disable_parallel_tool_use": True}),
        "tool_choice.none.disable_parallel_tool_use: Extra inputs are not permitted",
    ),
]


@pytest.mark.parametrize(("value", "expected"), [r[1:] for r in STRICT_ONLY], ids=[r[0] for r in STRICT_ONLY])
def test_strict_mode_rejects_extra_keys_that_lenient_mode_tolerates(
    value: dict[str, Any], expected: str
) -> None:
    assert error_of(value, strict=True) == expected
    out = params.prepare(value)
    assert "foo" not in out
    assert "betas" not in out


def test_lenient_mode_drops_unknown_top_level_keys() -> None:
    value = request(foo=1, betas=["b"], workspace_id="w", temperature=0.5)
    out = params.prepare(value)
    assert out == request(temperature=0.5)
    assert out is not value
    assert out["messages"] is value["messages"]
    assert set(value) == {*request(), "foo", "betas", "workspace_id", "temperature"}


# -- the shorthand ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_tokens", "default", "budget"),
    [
        (2048, 1024, 1024),
        (1025, 1024, 1024),
        (1024, 1024, 512),
        (1000, 1024, 500),
        (2, 1024, 1),
        (1, 1024, 1),
        (4096, 8000, 4095),
        (3000, 512, 512),
    ],
)
def test_shorthand_thinking_budget_stays_below_max_tokens(max_tokens: int, default: int, budget: int) -> None:
    value = request(max_tokens=max_tokens, thinking={"type": "enabled", "display": "omitted"})
    out = params.prepare(value, default_thinking_budget=default)
    assert out["thinking"] == {
        "type": "enabled",
        "display": "omitted",
        "budget_tokens": budget,
    }


def test_shorthand_thinking_is_still_thinking() -> None:
    value = request(thinking={"type": "enabled"}, temperature=0)
    expected = "temperature: `temperature` may only be set to 1 when thinking is enabled"
    assert error_of(value) == expected


def test_shorthand_web_search_options_go_into_the_tool() -> None:
    options = {
        "max_uses": 5,
        "allowed_domains": ["example.com"],
        "user_location": {"type": "approximate", "city": "Paris"},
    }
    out = params.prepare(request(tools=[TOOL], web_search={"type": "enabled", **options}))
    assert out["tools"] == [TOOL, WEB_SEARCH | options]
    assert "web_search" not in out


@pytest.mark.parametrize(
    "tools",
    [
        [{"type": "web_search_20260318", "name": "web_search"}, CODE_EXECUTION],
        [
            WEB_SEARCH | {"max_uses": 1},
            {"type": "code_execution_20260521", "name": "code_execution"},
        ],
    ],
)
def test_shorthand_tools_are_not_added_twice(tools: list[dict[str, Any]]) -> None:
    value = request(tools=tools, web_search={"type": "enabled"}, code_execution={"type": "enabled"})
    out = params.prepare(value)
    assert out == request(tools=tools)
    assert out["tools"] is tools


def test_shorthand_disabled_only_removes_the_key() -> None:
    value = request(
        web_search={"type": "disabled"},
        code_execution={"type": "disabled"},
        citations={"type": "disabled"},
    )
    assert params.prepare(value) == request()


def test_shorthand_tools_follow_a_fixed_order() -> None:
    a = request(code_execution={"type": "enabled"}, web_search={"type": "enabled"})
    assert params.prepare(a)["tools"] == [WEB_SEARCH, CODE_EXECUTION]


def test_shorthand_citations_reach_user_documents_only() -> None:
    pdf = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_DATA},
    }
    off = pdf | {"citations": {"enabled": False}}
    text = {"type": "text", "text": "Read"}
    messages = [
        {"role": "user", "content": [pdf, off, text]},
        {"role": "assistant", "content": [pdf | {"title": "kept"}]},
        {"role": "user", "content": "plain"},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t", "content": [pdf]},
                text,
            ],
        },
        {"role": "user", "content": [text]},
    ]
    value = request(messages=messages, citations={"type": "enabled"})
    snapshot = copy.deepcopy(value)
    out = params.prepare(value)
    cited = pdf | {"citations": {"enabled": True}}
    assert out["messages"] == [
        {"role": "user", "content": [cited, off, text]},
        messages[1],
        messages[2],
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t", "content": [cited]},
                text,
            ],
        },
        messages[4],
    ]
    # Copy on write: what did not change is shared, the rest is new.
    assert [o is m for o, m in zip(out["messages"], messages, strict=True)] == [
        False,
        True,
        True,
        False,
        True,
    ]
    assert out["messages"][0]["content"][1] is off
    assert value == snapshot


SHORTHAND_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    (
        "not an object",
        request(web_search="yes"),
        "web_search: Input should be a valid dictionary; the batchd shorthand takes "
        '{"type": "enabled"} or {"type": "disabled"}',
    ),
    ("no type", request(web_search={}), "web_search.type: Field required"),
    (
        "unknown type",
        request(code_execution={"type": "maybe"}),
        "code_execution.type: Input should be 'enabled' or 'disabled'",
    ),
    (
        "unknown option",
        request(web_search={"type": "enabled", "foo": 1}),
        "web_search.foo: Extra inputs are not permitted",
    ),
    (
        "option of another tool",
        request(code_execution={"type": "enabled", "max_uses": 3}),
        "code_execution.max_uses: Extra inputs are not permitted",
    ),
    (
        "citations option",
        request(citations={"type": "enabled", "pages": [1]}),
        "citations.pages: Extra inputs are not permitted",
    ),
    (
        "citations not an object",
        request(citations=True),
        "citations: Input should be a valid dictionary; the batchd shorthand takes "
        '{"type": "enabled"} or {"type": "disabled"}',
    ),
    (
        "max_uses",
        request(web_search={"type": "enabled", "max_uses": 0}),
        "web_search.max_uses: Input should be greater than or equal to 1",
    ),
    (
        "domains",
        request(web_search={"type": "enabled", "allowed_domains": ["a.com", 1]}),
        "web_search.allowed_domains.1: Input should be a valid string",
    ),
    (
        "allowed and blocked domains",
        request(web_search={"type": "enabled", "allowed_domains": [], "blocked_domains": []}),
        "web_search.blocked_domains: cannot be combined with allowed_domains; set at most one of them",
    ),
    (
        "user_location",
        request(web_search={"type": "enabled", "user_location": {"type": "exact"}}),
        "web_search.user_location.type: Input should be 'approximate'",
    ),
    (
        "name taken by a custom tool",
        request(tools=[TOOL | {"name": "web_search"}], web_search={"type": "enabled"}),
        "web_search: cannot add the web_search tool: tools.0 is already named 'web_search'",
    ),
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [r[1:] for r in SHORTHAND_ERRORS],
    ids=[r[0] for r in SHORTHAND_ERRORS],
)
def test_malformed_shorthand_is_rejected(value: dict[str, Any], expected: str) -> None:
    assert error_of(value) == expected
    key = expected.split(":")[0].split(".")[0]
    assert error_of(value, strict=True) == f"{key}: Extra inputs are not permitted"


def test_shorthand_tool_can_be_the_forced_tool_choice() -> None:
    value = request(
        web_search={"type": "enabled"},
        tool_choice={"type": "tool", "name": "web_search"},
    )
    assert params.prepare(value)["tools"] == [WEB_SEARCH]
    assert error_of(value, strict=True) == "web_search: Extra inputs are not permitted"


NORMALISED = [
    *SEEDS.values(),
    request(foo={"nested": [1]}, thinking={"type": "enabled", "display": "omitted"}),
    request(
        tools=[TOOL],
        web_search={"type": "enabled", "allowed_domains": ["a.com"]},
        citations={"type": "enabled"},
        messages=user(
            {"type": "document", "source": {"type": "file", "file_id": "f"}},
            {"type": "text", "text": "Cite"},
        ),
    ),
]


@pytest.mark.parametrize("value", NORMALISED)
def test_the_callers_params_are_never_mutated(value: dict[str, Any]) -> None:
    snapshot = copy.deepcopy(value)
    out = params.prepare(value)
    assert value == snapshot
    assert params.prepare(out, strict=True) == out  # the expansion is plain Messages API


def test_shorthand_doc_describes_the_extension() -> None:
    doc = params.SHORTHAND_DOC
    assert params.DEFAULT_THINKING_BUDGET == 1024
    for needle in (
        "web_search_20250305",
        "code_execution_20250825",
        '"citations": {"enabled": true}',
        "max(1, max_tokens // 2)",
        "Extra inputs are not permitted",
        "| In `params` | Becomes |",
    ):
        assert needle in doc
