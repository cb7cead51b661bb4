"""The server tools batchd runs, as a request defines them, and as the model is offered them.

A request's `web_search_*` / `web_fetch_*` tool becomes a `ServerTool`; the model sees it as an
ordinary function tool of the same name and an input schema as Anthropic's (`{"query"}`,
`{"url"}`), so every backend — the OpenAI translation, an Anthropic-compatible upstream, llama.cpp
— offers it like any client tool. Versions `_20260209` and later default `allowed_callers` to code
execution (dynamic filtering); batchd runs no code for a model, so it calls them directly, as
`allowed_callers: ["direct"]` asks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from batchd import exceptions
from batchd.tools import domains

SEARCH = "web_search"
FETCH = "web_fetch"
PREFIXES = {"web_search_": SEARCH, "web_fetch_": FETCH}
RESULT_TYPES = {"web_search_tool_result": SEARCH, "web_fetch_tool_result": FETCH}
ERROR_TYPES = {SEARCH: "web_search_tool_result_error", FETCH: "web_fetch_tool_result_error"}

_FUNCTIONS = {
    SEARCH: {
        "name": SEARCH,
        "description": (
            "Search the web. Returns the most relevant pages, each with its URL, title and text. "
            "Use it for facts you do not know or that may have changed."
        ),
        "input_schema": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "The search query"}},
            "required": ["query"],
        },
    },
    FETCH: {
        "name": FETCH,
        "description": (
            "Fetch the full text of a web page or PDF. The URL must have appeared in the "
            "conversation or in an earlier search or fetch result."
        ),
        "input_schema": {
            "type": "object",
            "properties": {"url": {"type": "string", "description": "The URL to fetch"}},
            "required": ["url"],
        },
    },
}


@dataclasses.dataclass(frozen=True)
class ServerTool:
    """One server tool of a request: which tool (`web_search` / `web_fetch`) and its definition."""

    name: str
    definition: Mapping[str, Any]

    @property
    def max_uses(self) -> int | None:
        value = self.definition.get("max_uses")
        return value if isinstance(value, int) else None

    @property
    def allowed_domains(self) -> tuple[str, ...]:
        return tuple(self.definition.get("allowed_domains") or ())

    @property
    def blocked_domains(self) -> tuple[str, ...]:
        return tuple(self.definition.get("blocked_domains") or ())

    @property
    def user_location(self) -> dict[str, str] | None:
        location = self.definition.get("user_location")
        if not isinstance(location, dict):
            return None
        return {k: v for k, v in location.items() if isinstance(v, str)}

    @property
    def citations(self) -> dict[str, Any] | None:
        """web_fetch: the tool's `citations` ({"enabled": bool}), off when absent."""
        value = self.definition.get("citations")
        return value if isinstance(value, dict) else None

    @property
    def cites(self) -> bool:
        return bool((self.citations or {}).get("enabled"))

    @property
    def max_content_tokens(self) -> int | None:
        value = self.definition.get("max_content_tokens")
        return value if isinstance(value, int) else None

    def function(self) -> dict[str, Any]:
        """The function tool the model is offered in its place."""
        offered = dict(_FUNCTIONS[self.name])
        if self.definition.get("cache_control") is not None:
            offered["cache_control"] = self.definition["cache_control"]
        return offered


def kind_of(tool: Any) -> str | None:
    """`web_search` / `web_fetch` for a tool definition batchd runs itself, else None."""
    kind = tool.get("type") if isinstance(tool, dict) else None
    if not isinstance(kind, str):
        return None
    return next((name for prefix, name in PREFIXES.items() if kind.startswith(prefix)), None)


def server_tools(params: dict[str, Any]) -> dict[str, ServerTool]:
    """The request's web_search / web_fetch tools by name; raises InvalidParams for a bad definition."""
    found: dict[str, ServerTool] = {}
    for i, tool in enumerate(params.get("tools") or ()):
        name = kind_of(tool)
        if name is None:
            continue
        where = f"tools.{i}.{tool['type']}"
        if tool.get("name") != name:
            raise exceptions.InvalidParams(f"{where}.name: Input should be '{name}'")
        if name in found:
            raise exceptions.InvalidParams(f"{where}: only one {name} tool may be given")
        domains.check_filters(tool.get("allowed_domains"), tool.get("blocked_domains"), tool=where)
        for key in ("max_uses", "max_content_tokens"):
            value = tool.get(key)
            if value is not None and (type(value) is not int or value < 1):
                raise exceptions.InvalidParams(f"{where}.{key}: Input should be an integer of at least 1")
        found[name] = ServerTool(name, tool)
    return found


def offered_tools(params: dict[str, Any], tools: Mapping[str, ServerTool]) -> list[dict[str, Any]]:
    """The request's `tools` with each server tool batchd runs replaced by its function tool."""
    offered = []
    for tool in params.get("tools") or ():
        name = kind_of(tool)
        offered.append(tools[name].function() if name is not None and name in tools else tool)
    return offered
