"""Validation of `messages` and `system`: roles, content strings and content blocks.

Block types are those of the SDK's (beta) `ContentBlockParam` union. The common ones
(text, image, document, tool_use, tool_result, thinking, redacted_thinking) have their
fields checked; the others (server tool results, MCP, compaction, ...) need only a
`type` the API knows, because their shapes change with every tool version.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from batchd.params import checks as params_checks

MAX_MESSAGES = 100_000  # the real API's limit per request
ROLES = ("user", "assistant", "system")
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")

EMPTY_TEXT = "text content blocks must be non-empty"
BLANK_TEXT = "text content blocks must contain non-whitespace text"
EMPTY_USER = "user messages must have non-empty content"
EMPTY_MESSAGE = "all messages must have non-empty content except for the optional final assistant message"
TRAILING_SPACE = "final assistant content cannot end with trailing whitespace"
NOT_CONTENT = "Input should be a valid string or a list of content blocks"

BlockCheck = Callable[[dict[str, Any], bool], None]

_CACHE = "cache_control"
_TEXT_KEYS = frozenset({"type", "text", "citations", _CACHE})
_IMAGE_KEYS = frozenset({"type", "source", _CACHE, "transformations"})
_DOCUMENT_KEYS = frozenset({"type", "source", _CACHE, "citations", "context", "title"})
_TOOL_USE_KEYS = frozenset({"type", "id", "input", "name", _CACHE, "caller", "toolset_name"})
_TOOL_RESULT_KEYS = frozenset({"type", "tool_use_id", _CACHE, "content", "is_error", "toolset_name"})
_THINKING_KEYS = frozenset({"type", "thinking", "signature"})
_REDACTED_KEYS = frozenset({"type", "data"})
_CHAT_MESSAGE_KEYS = frozenset({"role", "content"})
_SYSTEM_MESSAGE_KEYS = frozenset({"role", "content", "clear_at", "output_config"})

# source type -> (field, allowed values or None for any string)
_Fields = tuple[tuple[str, tuple[str, ...] | None], ...]
_IMAGE_SOURCES: dict[str, _Fields] = {
    "base64": (("media_type", IMAGE_MEDIA_TYPES), ("data", None)),
    "url": (("url", None),),
    "file": (("file_id", None),),
}
_DOCUMENT_SOURCES: dict[str, _Fields] = {
    "base64": (("media_type", ("application/pdf",)), ("data", None)),
    "text": (("media_type", ("text/plain",)), ("data", None)),
    "content": (),  # checked by _content_source
    "url": (("url", None),),
    "file": (("file_id", None),),
}


def check_messages(messages: Any, strict: bool) -> None:
    if type(messages) is not list:
        raise params_checks.Invalid(params_checks.NOT_LIST, "messages")
    count = len(messages)
    if count == 0:
        raise params_checks.Invalid("List should have at least 1 item after validation, not 0", "messages")
    if count > MAX_MESSAGES:
        raise params_checks.Invalid(
            f"List should have at most {MAX_MESSAGES} items after validation, not {count}",
            "messages",
        )
    last = count - 1
    for i, message in enumerate(messages):
        try:
            _message(message, i == last, strict)
        except params_checks.Invalid as exc:
            raise exc.under("messages", i) from None


def check_system(system: Any, strict: bool) -> None:
    if type(system) is str:
        return
    if type(system) is not list:
        raise params_checks.Invalid("Input should be a valid string or a list of text blocks", "system")
    for i, block in enumerate(system):
        try:
            if type(block) is not dict:
                raise params_checks.Invalid(params_checks.NOT_DICT)
            if block.get("type") != "text":
                missing = "type" not in block
                raise params_checks.Invalid(
                    params_checks.FIELD_REQUIRED if missing else "Input should be 'text'",
                    "type",
                )
            _text(block, strict)
        except params_checks.Invalid as exc:
            raise exc.under("system", i) from None


def _message(message: Any, final: bool, strict: bool) -> None:
    if type(message) is not dict:
        raise params_checks.Invalid(params_checks.NOT_DICT)
    role = message.get("role")
    if role == "user" or role == "assistant":
        if strict:
            params_checks.no_extra(message, _CHAT_MESSAGE_KEYS)
        _chat_content(message, role, final, strict)
    elif role == "system":
        if strict:
            params_checks.no_extra(message, _SYSTEM_MESSAGE_KEYS)
        content = message.get("content")
        if type(content) is list:
            _blocks(content, _SYSTEM_BLOCKS, _SYSTEM_TAGS, strict)
        elif content is not None and type(content) is not str:
            raise params_checks.Invalid(NOT_CONTENT, "content")
    else:
        missing = "role" not in message
        raise params_checks.Invalid(
            params_checks.FIELD_REQUIRED if missing else params_checks.one_of(ROLES),
            "role",
        )


def _chat_content(message: dict[str, Any], role: str, final: bool, strict: bool) -> None:
    content = message.get("content")
    if type(content) is str:
        if not content:
            _empty(role, final)
        elif final and role == "assistant" and content[-1].isspace():
            raise params_checks.Invalid(TRAILING_SPACE)
        elif content.isspace():
            raise params_checks.Invalid(BLANK_TEXT, "content")
    elif type(content) is list:
        if not content:
            _empty(role, final)
            return
        _blocks(content, _MESSAGE_BLOCKS, _MESSAGE_TAGS, strict)
        if final and role == "assistant":
            tail = content[-1]
            if tail["type"] == "text" and tail["text"][-1].isspace():
                raise params_checks.Invalid(TRAILING_SPACE)
    else:
        missing = "content" not in message
        raise params_checks.Invalid(params_checks.FIELD_REQUIRED if missing else NOT_CONTENT, "content")


def _empty(role: str, final: bool) -> None:
    if role == "user":
        raise params_checks.Invalid(EMPTY_USER)
    if not final:
        raise params_checks.Invalid(EMPTY_MESSAGE)


def _blocks(blocks: list[Any], table: dict[str, BlockCheck], tags: str, strict: bool) -> None:
    """Check each block of a content list against `table` (block type -> check)."""
    for j, block in enumerate(blocks):
        try:
            if type(block) is not dict:
                raise params_checks.Invalid(params_checks.NOT_DICT)
            kind = block.get("type")
            if type(kind) is not str or kind not in table:
                raise params_checks.bad_tag(block, tags)
            try:
                table[kind](block, strict)
            except params_checks.Invalid as exc:
                raise exc.under(kind) from None
        except params_checks.Invalid as exc:
            raise exc.under("content", j) from None


def _accept(block: dict[str, Any], strict: bool) -> None:
    """Block types checked for their `type` only."""


def _text(block: dict[str, Any], strict: bool) -> None:
    text = params_checks.require_str(block, "text")
    if not text:
        raise params_checks.Invalid(EMPTY_TEXT)
    if text.isspace():
        raise params_checks.Invalid(BLANK_TEXT)
    params_checks.optional_list(block, "citations")
    params_checks.optional_dict(block, _CACHE)
    if strict:
        params_checks.no_extra(block, _TEXT_KEYS)


def _image(block: dict[str, Any], strict: bool) -> None:
    source = params_checks.require_dict(block, "source")
    try:
        _source(source, _IMAGE_SOURCES, strict)
    except params_checks.Invalid as exc:
        raise exc.under("source") from None
    params_checks.optional_dict(block, _CACHE)
    if strict:
        params_checks.no_extra(block, _IMAGE_KEYS)


def _document(block: dict[str, Any], strict: bool) -> None:
    source = params_checks.require_dict(block, "source")
    try:
        _source(source, _DOCUMENT_SOURCES, strict)
        if source["type"] == "content":
            _content_source(source, strict)
    except params_checks.Invalid as exc:
        raise exc.under("source") from None
    params_checks.optional_str(block, "title")
    params_checks.optional_str(block, "context")
    params_checks.optional_dict(block, _CACHE)
    citations = block.get("citations")
    if citations is not None:
        if type(citations) is not dict:
            raise params_checks.Invalid(params_checks.NOT_DICT, "citations")
        try:
            params_checks.optional_bool(citations, "enabled")
            if strict:
                params_checks.no_extra(citations, ("enabled",))
        except params_checks.Invalid as exc:
            raise exc.under("citations") from None
    if strict:
        params_checks.no_extra(block, _DOCUMENT_KEYS)


def _source(source: dict[str, Any], variants: dict[str, _Fields], strict: bool) -> None:
    kind = source.get("type")
    if type(kind) is not str or kind not in variants:
        raise params_checks.bad_tag(source, params_checks.quoted(variants))
    fields = variants[kind]
    for name, allowed in fields:
        value = source.get(name)
        if type(value) is not str or (allowed is not None and value not in allowed):
            if name not in source:
                message = params_checks.FIELD_REQUIRED
            elif allowed is None:
                message = params_checks.NOT_STR
            else:
                message = params_checks.one_of(allowed)
            raise params_checks.Invalid(message, kind, name)
    if strict and fields:
        try:
            params_checks.no_extra(source, ("type", *(name for name, _ in fields)))
        except params_checks.Invalid as exc:
            raise exc.under(kind) from None


def _content_source(source: dict[str, Any], strict: bool) -> None:
    content = source.get("content")
    try:
        if type(content) is list:
            _blocks(content, _SOURCE_BLOCKS, _SOURCE_TAGS, strict)
            return
        if type(content) is not str:
            missing = "content" not in source
            raise params_checks.Invalid(params_checks.FIELD_REQUIRED if missing else NOT_CONTENT, "content")
    except params_checks.Invalid as exc:
        raise exc.under("content") from None
    if strict:
        try:
            params_checks.no_extra(source, ("type", "content"))
        except params_checks.Invalid as exc:
            raise exc.under("content") from None


def _tool_use(block: dict[str, Any], strict: bool) -> None:
    params_checks.require_str(block, "id")
    params_checks.require_str(block, "name")
    params_checks.require_dict(block, "input")
    params_checks.optional_dict(block, _CACHE)
    if strict:
        params_checks.no_extra(block, _TOOL_USE_KEYS)


def _tool_result(block: dict[str, Any], strict: bool) -> None:
    params_checks.require_str(block, "tool_use_id")
    content = block.get("content")
    if type(content) is list:
        _blocks(content, _TOOL_RESULT_BLOCKS, _TOOL_RESULT_TAGS, strict)
    elif content is not None and type(content) is not str:
        raise params_checks.Invalid(NOT_CONTENT, "content")
    params_checks.optional_bool(block, "is_error")
    params_checks.optional_dict(block, _CACHE)
    if strict:
        params_checks.no_extra(block, _TOOL_RESULT_KEYS)


def _thinking(block: dict[str, Any], strict: bool) -> None:
    params_checks.require_str(block, "thinking")
    params_checks.require_str(block, "signature")
    if strict:
        params_checks.no_extra(block, _THINKING_KEYS)


def _redacted_thinking(block: dict[str, Any], strict: bool) -> None:
    params_checks.require_str(block, "data")
    if strict:
        params_checks.no_extra(block, _REDACTED_KEYS)


# In the order of the SDK's BetaContentBlockParam union, which the error messages list.
_MESSAGE_BLOCKS: dict[str, BlockCheck] = {
    "text": _text,
    "image": _image,
    "document": _document,
    "search_result": _accept,
    "thinking": _thinking,
    "redacted_thinking": _redacted_thinking,
    "tool_use": _tool_use,
    "tool_result": _tool_result,
    "server_tool_use": _accept,
    "web_search_tool_result": _accept,
    "web_fetch_tool_result": _accept,
    "advisor_tool_result": _accept,
    "code_execution_tool_result": _accept,
    "bash_code_execution_tool_result": _accept,
    "text_editor_code_execution_tool_result": _accept,
    "tool_search_tool_result": _accept,
    "mcp_tool_use": _accept,
    "mcp_tool_result": _accept,
    "container_upload": _accept,
    "compaction": _accept,
    "tool_addition": _accept,
    "tool_removal": _accept,
    "mcp_tool_listing": _accept,
    "fallback": _accept,
}
_TOOL_RESULT_BLOCKS: dict[str, BlockCheck] = {
    "text": _text,
    "image": _image,
    "search_result": _accept,
    "document": _document,
    "tool_reference": _accept,
    "browser_state": _accept,
}
_SOURCE_BLOCKS: dict[str, BlockCheck] = {"text": _text, "image": _image}
_SYSTEM_BLOCKS: dict[str, BlockCheck] = {
    "text": _text,
    "tool_addition": _accept,
    "tool_removal": _accept,
}
_MESSAGE_TAGS = params_checks.quoted(_MESSAGE_BLOCKS)
_TOOL_RESULT_TAGS = params_checks.quoted(_TOOL_RESULT_BLOCKS)
_SOURCE_TAGS = params_checks.quoted(_SOURCE_BLOCKS)
_SYSTEM_TAGS = params_checks.quoted(_SYSTEM_BLOCKS)
