"""The seed shorthand: batchd's documented extension of the Messages API params.

Only lenient mode expands it; in strict mode `params.prepare` rejects each shorthand
key as the real API would. Expansion works on a shallow copy of the params and copies
each list or block it changes, so the caller's dict and its contents are never mutated.
"""

from __future__ import annotations

from typing import Any

from batchd.params import checks as params_checks
from batchd.params import tools as params_tools

DEFAULT_THINKING_BUDGET = 1024  # tokens, for `{"type": "enabled"}` without a budget
MIN_THINKING_BUDGET = 1024  # tokens, the real API's minimum `budget_tokens`
WEB_SEARCH_TOOL = "web_search_20250305"
CODE_EXECUTION_TOOL = "code_execution_20250825"
KEYS = frozenset({"web_search", "code_execution", "citations"})

_SWITCH = ("enabled", "disabled")
_TOOL_OPTIONS = frozenset({"allowed_callers", "cache_control", "defer_loading", "strict"})
_OPTIONS = {
    "web_search": _TOOL_OPTIONS | {"allowed_domains", "blocked_domains", "max_uses", "user_location"},
    "code_execution": _TOOL_OPTIONS,
    "citations": frozenset[str](),
}
_NOT_SWITCH = (
    f'{params_checks.NOT_DICT}; the batchd shorthand takes {{"type": "enabled"}} or {{"type": "disabled"}}'
)

_ROWS = (
    (
        '`"thinking": {"type": "enabled"}` without `budget_tokens`',
        "`budget_tokens` is the `thinking_budget` setting (default "
        f"{DEFAULT_THINKING_BUDGET}), lowered to `max_tokens - 1` if it is not below "
        f"`max_tokens`. When `max_tokens` ≤ {MIN_THINKING_BUDGET} it is "
        "`max(1, max_tokens // 2)`, which is under the real API's minimum of "
        f"{MIN_THINKING_BUDGET}. Other `thinking` fields are kept.",
    ),
    (
        '`"web_search": {"type": "enabled"}`',
        f'`{{"type": "{WEB_SEARCH_TOOL}", "name": "web_search"}}` appended to `tools`. '
        "The tool's optional fields `max_uses`, `allowed_domains`, `blocked_domains`, "
        "`user_location`, `cache_control`, `allowed_callers`, `defer_loading` and "
        "`strict` may be given next to `type` and are copied into it. Nothing is "
        "added if `tools` already holds a `web_search_*` tool.",
    ),
    (
        '`"code_execution": {"type": "enabled"}`',
        f'`{{"type": "{CODE_EXECUTION_TOOL}", "name": "code_execution"}}` appended to '
        "`tools` (optional fields: `cache_control`, `allowed_callers`, "
        "`defer_loading`, `strict`), unless `tools` already holds a "
        "`code_execution_*` tool.",
    ),
    (
        '`"citations": {"type": "enabled"}`',
        '`"citations": {"enabled": true}` set on every `document` block of the `user` '
        "messages (also inside `tool_result` content) that does not set `citations`.",
    ),
    ('`{"type": "disabled"}` for any of the three', "nothing"),
)

SHORTHAND_DOC = "\n".join(
    [
        "#### Shorthand params (a batchd extension)",
        "",
        "The Messages API has no top-level `web_search`, `code_execution` or "
        "`citations` parameter and requires `thinking.budget_tokens`. In its default, "
        "lenient mode batchd accepts these shorthands in a request's `params` and "
        "expands them before the request reaches a backend:",
        "",
        "| In `params` | Becomes |",
        "|---|---|",
        *(f"| {shorthand} | {expansion} |" for shorthand, expansion in _ROWS),
        "",
        "The `web_search`, `code_execution` and `citations` keys are removed. Any "
        'other value (`"web_search": "yes"`, `{"type": "maybe"}`, an unknown field) '
        "makes the request `errored` with an `invalid_request_error` that names the "
        "field, as does a shorthand tool whose name a custom tool already has. Other "
        "unknown top-level keys are dropped, so backends never see them.",
        "",
        "With the `strict` setting on, batchd validates exactly as the real API does: "
        "each shorthand key, like any unknown key, fails with "
        '`"<key>: Extra inputs are not permitted"`, and a missing budget with '
        '`"thinking.enabled.budget_tokens: Field required"`.',
        "",
    ]
)


def thinking_budget(max_tokens: int, default: int) -> int:
    """The budget for `{"type": "enabled"}` thinking without `budget_tokens`."""
    if default < max_tokens:
        return default
    if max_tokens > MIN_THINKING_BUDGET:
        return max_tokens - 1
    return max(1, max_tokens // 2)


def expand(out: dict[str, Any], found: dict[str, Any]) -> None:
    """Apply the shorthand keys in `found` to `out`, a shallow copy of the params."""
    # A fixed order, not the order of `found`, so equal requests expand to equal tools.
    for key in ("web_search", "code_execution", "citations"):
        if key not in found:
            continue
        options = _switch(key, found[key])
        if options is None:
            continue
        if key == "web_search":
            try:
                params_tools.check_web_search_options(options)
            except params_checks.Invalid as exc:
                raise exc.under(key) from None
            _add_tool(out, key, WEB_SEARCH_TOOL, options)
        elif key == "code_execution":
            _add_tool(out, key, CODE_EXECUTION_TOOL, options)
        else:
            messages = _cite_messages(out["messages"])
            if messages is not None:
                out["messages"] = messages


def _switch(key: str, value: Any) -> dict[str, Any] | None:
    """Check `{"type": "enabled" | "disabled", **options}`; the options if enabled."""
    if type(value) is not dict:
        raise params_checks.Invalid(_NOT_SWITCH, key)
    kind = value.get("type")
    if type(kind) is not str or kind not in _SWITCH:
        missing = "type" not in value
        message = params_checks.FIELD_REQUIRED if missing else params_checks.one_of(_SWITCH)
        raise params_checks.Invalid(message, key, "type")
    allowed = _OPTIONS[key]
    for option in value:
        if option != "type" and option not in allowed:
            raise params_checks.Invalid(params_checks.EXTRA, key, option)
    if kind == "disabled":
        return None
    return {k: v for k, v in value.items() if k != "type"}


def _add_tool(out: dict[str, Any], key: str, tool_type: str, options: dict[str, Any]) -> None:
    tools: list[dict[str, Any]] = out.get("tools", [])
    prefix = key + "_"
    for j, tool in enumerate(tools):
        kind = tool.get("type")
        if type(kind) is str and kind.startswith(prefix):
            return
        if tool.get("name") == key:
            raise params_checks.Invalid(f"cannot add the {key} tool: tools.{j} is already named '{key}'", key)
    out["tools"] = [*tools, {"type": tool_type, "name": key, **options}]


def _cite_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """`messages` with citations enabled on user documents; None if nothing changes."""
    new: list[dict[str, Any]] | None = None
    for i, message in enumerate(messages):
        content = message.get("content")
        if message["role"] != "user" or type(content) is not list:
            continue
        blocks = _cite_blocks(content)
        if blocks is not None:
            if new is None:
                new = list(messages)
            new[i] = {**message, "content": blocks}
    return new


def _cite_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    new: list[dict[str, Any]] | None = None
    for j, block in enumerate(blocks):
        kind = block["type"]
        if kind == "document" and block.get("citations") is None:
            changed: dict[str, Any] | None = {**block, "citations": {"enabled": True}}
        elif kind == "tool_result" and type(block.get("content")) is list:
            inner = _cite_blocks(block["content"])
            changed = None if inner is None else {**block, "content": inner}
        else:
            continue
        if changed is not None:
            if new is None:
                new = list(blocks)
            new[j] = changed
    return new
