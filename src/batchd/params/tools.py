"""Validation of `tools` and `tool_choice`.

Custom tools are checked in full. Server tools are recognised by the prefix of their
versioned `type` (`web_search_20250305`, `code_execution_20250825`, ...) so that a new
tool version needs no change here; they need a `name`, except toolsets, which have none.
"""

from __future__ import annotations

import re
from typing import Any

from batchd.params import checks as params_checks

TOOL_NAME_PATTERN = "^[a-zA-Z0-9_-]{1,128}$"
SERVER_TOOL_PREFIXES = (
    "web_search_",
    "web_fetch_",
    "code_execution_",
    "bash_",
    "text_editor_",
    "computer_",
    "memory_",
    "tool_search_tool_",
    "advisor_",
    "browser_toolset_",
    "mcp_toolset",
)
TOOLSET_PREFIXES = ("mcp_toolset", "browser_toolset_", "computer_toolset_")
# The `type`s of the SDK's BetaToolUnionParam, listed in the error for an unknown type.
KNOWN_TOOL_TYPES = (
    "custom",
    "bash_20241022",
    "bash_20250124",
    "code_execution_20250522",
    "code_execution_20250825",
    "code_execution_20260120",
    "code_execution_20260521",
    "browser_toolset_20260801",
    "computer_20241022",
    "memory_20250818",
    "computer_20250124",
    "text_editor_20241022",
    "computer_20251124",
    "computer_toolset_20260801",
    "text_editor_20250124",
    "text_editor_20250429",
    "text_editor_20250728",
    "web_search_20250305",
    "web_fetch_20250910",
    "web_search_20260209",
    "web_fetch_20260209",
    "web_fetch_20260309",
    "web_search_20260318",
    "web_fetch_20260318",
    "advisor_20260301",
    "tool_search_tool_bm25_20251119",
    "tool_search_tool_bm25",
    "tool_search_tool_regex_20251119",
    "tool_search_tool_regex",
    "mcp_toolset",
)
FORCING_TOOL_CHOICES = frozenset({"any", "tool"})

_NAME = re.compile(TOOL_NAME_PATTERN[1:-1])
_TOOL_TAGS = params_checks.quoted(KNOWN_TOOL_TYPES)
_CUSTOM_KEYS = frozenset(
    {
        "type",
        "name",
        "input_schema",
        "description",
        "cache_control",
        "allowed_callers",
        "defer_loading",
        "eager_input_streaming",
        "input_examples",
        "strict",
    }
)
_TOOL_CHOICE_KEYS = {
    "auto": frozenset({"type", "disable_parallel_tool_use"}),
    "any": frozenset({"type", "disable_parallel_tool_use"}),
    "tool": frozenset({"type", "name", "disable_parallel_tool_use"}),
    "none": frozenset({"type"}),
}
_TOOL_CHOICE_TAGS = params_checks.quoted(_TOOL_CHOICE_KEYS)


def check_tools(tools: Any, strict: bool) -> None:
    if type(tools) is not list:
        raise params_checks.Invalid(params_checks.NOT_LIST, "tools")
    seen: dict[str, int] = {}
    for i, tool in enumerate(tools):
        try:
            name = _tool(tool, strict)
        except params_checks.Invalid as exc:
            raise exc.under("tools", i) from None
        if name is None:
            continue
        if name in seen:
            raise params_checks.Invalid(
                f"Tool names must be unique; '{name}' is also the name of tools.{seen[name]}",
                "tools",
                i,
                "name",
            )
        seen[name] = i


def check_tool_choice(choice: Any, strict: bool) -> None:
    if type(choice) is not dict:
        raise params_checks.Invalid(params_checks.NOT_DICT, "tool_choice")
    kind = choice.get("type")
    if type(kind) is not str or kind not in _TOOL_CHOICE_KEYS:
        raise params_checks.bad_tag(choice, _TOOL_CHOICE_TAGS).under("tool_choice")
    try:
        if kind == "tool":
            params_checks.require_str(choice, "name")
        params_checks.optional_bool(choice, "disable_parallel_tool_use")
        if strict:
            params_checks.no_extra(choice, _TOOL_CHOICE_KEYS[kind])
    except params_checks.Invalid as exc:
        raise exc.under("tool_choice", kind) from None


def check_tool_choice_target(name: str, tools: list[dict[str, Any]]) -> None:
    """`tool_choice: {"type": "tool", "name": ...}` must name one of `tools`."""
    for tool in tools:
        if tool.get("name") == name:
            return
        kind = tool.get("type")
        if type(kind) is str and kind.startswith(TOOLSET_PREFIXES):
            return  # a toolset's tool names are only known to the server behind it
    raise params_checks.Invalid(f"Tool '{name}' not found in tools", "tool_choice", "tool", "name")


def check_web_search_options(options: dict[str, Any]) -> None:
    """The optional fields of a web_search tool, also taken by the shorthand."""
    max_uses = options.get("max_uses")
    if max_uses is not None:
        if type(max_uses) is not int:
            raise params_checks.Invalid(params_checks.NOT_INT, "max_uses")
        if max_uses < 1:
            raise params_checks.Invalid("Input should be greater than or equal to 1", "max_uses")
    for key in ("allowed_domains", "blocked_domains"):
        value = options.get(key)
        if value is not None:
            try:
                params_checks.str_list(value)
            except params_checks.Invalid as exc:
                raise exc.under(key) from None
    if options.get("allowed_domains") is not None and options.get("blocked_domains") is not None:
        raise params_checks.Invalid(
            "cannot be combined with allowed_domains; set at most one of them",
            "blocked_domains",
        )
    location = options.get("user_location")
    if location is not None:
        if type(location) is not dict:
            raise params_checks.Invalid(params_checks.NOT_DICT, "user_location")
        if location.get("type") != "approximate":
            missing = "type" not in location
            message = params_checks.FIELD_REQUIRED if missing else "Input should be 'approximate'"
            raise params_checks.Invalid(message, "user_location", "type")
    params_checks.optional_dict(options, "cache_control")


def _tool(tool: Any, strict: bool) -> str | None:
    """Check one tool; return its name, or None for a toolset."""
    if type(tool) is not dict:
        raise params_checks.Invalid(params_checks.NOT_DICT)
    kind = tool.get("type")
    if kind is None or kind == "custom":
        try:
            return _custom(tool, strict)
        except params_checks.Invalid as exc:
            raise exc.under("custom") from None
    if type(kind) is not str or not kind.startswith(SERVER_TOOL_PREFIXES):
        raise params_checks.bad_tag(tool, _TOOL_TAGS)
    try:
        return _server(tool, kind)
    except params_checks.Invalid as exc:
        raise exc.under(kind) from None


def _custom(tool: dict[str, Any], strict: bool) -> str:
    name = params_checks.require_str(tool, "name")
    if _NAME.fullmatch(name) is None:
        raise params_checks.Invalid(f"String should match pattern '{TOOL_NAME_PATTERN}'", "name")
    schema = params_checks.require_dict(tool, "input_schema")
    if schema.get("type") != "object":
        missing = "type" not in schema
        message = params_checks.FIELD_REQUIRED if missing else "Input should be 'object'"
        raise params_checks.Invalid(message, "input_schema", "type")
    params_checks.optional_str(tool, "description")
    params_checks.optional_dict(tool, "cache_control")
    if strict:
        params_checks.no_extra(tool, _CUSTOM_KEYS)
    return name


def _server(tool: dict[str, Any], kind: str) -> str | None:
    if kind.startswith(TOOLSET_PREFIXES):
        if kind == "mcp_toolset":
            params_checks.require_str(tool, "mcp_server_name")
        return None
    name = params_checks.require_str(tool, "name")
    if not name:
        raise params_checks.Invalid("String should have at least 1 character", "name")
    if kind.startswith("web_search_"):
        check_web_search_options(tool)
    params_checks.optional_dict(tool, "cache_control")
    return name
