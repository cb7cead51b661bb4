"""The server tools batchd runs, as a request defines them, and as the model is offered them.

A request's `web_search_*` / `web_fetch_*` tool becomes a `ServerTool`; the model sees it as an
ordinary function tool of the same name and an input schema as Anthropic's (`{"query"}`,
`{"url"}`), so every backend — the OpenAI translation, an Anthropic-compatible upstream, llama.cpp
— offers it like any client tool. A `code_execution_*` tool becomes the functions of its version:
`code_execution` (`{"code"}`, Python) for `_20250522`; `bash_code_execution` (`{"command"}`) and
`text_editor_code_execution` for `_20250825`; all three for `_20260120` and `_20260521`, whose
Python runs in a REPL that keeps its variables. Versions `_20260209` and later of the web tools
default `allowed_callers` to code execution (dynamic filtering); batchd calls them directly, as
`allowed_callers: ["direct"]` asks (docs/server-tools.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from batchd import exceptions
from batchd.tools import domains
from batchd.tools.code_execution.names import BASH, CODE, EDITOR, LEGACY, REPL_VERSIONS, VERSIONS

SEARCH = "web_search"
FETCH = "web_fetch"
PREFIXES = {"web_search_": SEARCH, "web_fetch_": FETCH, "code_execution_": CODE}
RESULT_TYPES = {
    "web_search_tool_result": SEARCH,
    "web_fetch_tool_result": FETCH,
    "code_execution_tool_result": CODE,
    "bash_code_execution_tool_result": BASH,
    "text_editor_code_execution_tool_result": EDITOR,
}
ERROR_TYPES = {
    SEARCH: "web_search_tool_result_error",
    FETCH: "web_fetch_tool_result_error",
    CODE: "code_execution_tool_result_error",
    BASH: "bash_code_execution_tool_result_error",
    EDITOR: "text_editor_code_execution_tool_result_error",
}

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
    CODE: {
        "name": CODE,
        "description": (
            "Run Python 3 code in a sandbox without network access and get its stdout, stderr and "
            "return code. Print what you need to see. Files written to the directory named by the "
            "OUTPUT_DIR environment variable are returned to the user."
        ),
        "input_schema": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "The Python code to run"}},
            "required": ["code"],
        },
    },
    BASH: {
        "name": BASH,
        "description": (
            "Run a bash command in a sandbox without network access (Python 3 is available as "
            "python3) and get its stdout, stderr and return code. Files in the working directory "
            "persist between calls; files written to $OUTPUT_DIR are returned to the user."
        ),
        "input_schema": {
            "type": "object",
            "properties": {"command": {"type": "string", "description": "The bash command to run"}},
            "required": ["command"],
        },
    },
    EDITOR: {
        "name": EDITOR,
        "description": (
            "View, create or edit a text file in the sandbox's working directory. Commands: view "
            "(path, optional view_range [first, last]), create (path, file_text), str_replace "
            "(path, old_str, new_str: old_str must occur exactly once)."
        ),
        "input_schema": {
            "type": "object",
            "properties": {
                "command": {"type": "string", "enum": ["view", "create", "str_replace"]},
                "path": {"type": "string", "description": "The file's path"},
                "file_text": {"type": "string", "description": "create: the file's content"},
                "old_str": {"type": "string", "description": "str_replace: the text to replace"},
                "new_str": {"type": "string", "description": "str_replace: its replacement"},
                "view_range": {
                    "type": "array",
                    "items": {"type": "integer"},
                    "description": "view: the first and last line to show (1-based; -1: to the end)",
                },
            },
            "required": ["command", "path"],
        },
    },
}


@dataclasses.dataclass(frozen=True)
class ServerTool:
    """One server tool function of a request: its name (`web_search`, `web_fetch`, or a function
    of code execution: `code_execution`, `bash_code_execution`, `text_editor_code_execution`) and
    the request's definition it comes from."""

    name: str
    definition: Mapping[str, Any]

    @property
    def version(self) -> str:
        return str(self.definition.get("type", ""))

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
    """`web_search` / `web_fetch` / `code_execution` for a tool definition batchd runs itself, else None."""
    kind = tool.get("type") if isinstance(tool, dict) else None
    if not isinstance(kind, str):
        return None
    return next((name for prefix, name in PREFIXES.items() if kind.startswith(prefix)), None)


def functions_of(definition: Mapping[str, Any]) -> tuple[str, ...]:
    """The functions the model is offered for one server tool definition."""
    name = kind_of(definition)
    if name != CODE:
        return () if name is None else (name,)
    version = definition.get("type")
    if version == LEGACY:
        return (CODE,)
    if version in REPL_VERSIONS:
        return (CODE, BASH, EDITOR)
    return (BASH, EDITOR)


def server_tools(params: dict[str, Any]) -> dict[str, ServerTool]:
    """The request's server tool functions by name; raises InvalidParams for a bad definition."""
    found: dict[str, ServerTool] = {}
    kinds: set[str] = set()
    for i, tool in enumerate(params.get("tools") or ()):
        name = kind_of(tool)
        if name is None:
            continue
        where = f"tools.{i}.{tool['type']}"
        if tool.get("name") != name:
            raise exceptions.InvalidParams(f"{where}.name: Input should be '{name}'")
        if name in kinds:
            raise exceptions.InvalidParams(f"{where}: only one {name} tool may be given")
        kinds.add(name)
        if name == CODE:
            if tool["type"] not in VERSIONS:
                raise exceptions.InvalidParams(
                    f"{where}.type: batchd runs {', '.join(sorted(VERSIONS))}, not {tool['type']!r}"
                )
            found.update((f, ServerTool(f, tool)) for f in functions_of(tool))
            continue
        domains.check_filters(tool.get("allowed_domains"), tool.get("blocked_domains"), tool=where)
        for key in ("max_uses", "max_content_tokens"):
            value = tool.get(key)
            if value is not None and (type(value) is not int or value < 1):
                raise exceptions.InvalidParams(f"{where}.{key}: Input should be an integer of at least 1")
        found[name] = ServerTool(name, tool)
    return found


def offered_tools(params: dict[str, Any], tools: Mapping[str, ServerTool]) -> list[dict[str, Any]]:
    """The request's `tools` with each server tool batchd runs replaced by its function tool."""
    offered: list[dict[str, Any]] = []
    for tool in params.get("tools") or ():
        names = [f for f in functions_of(tool) if f in tools]
        if names:
            offered.extend(tools[f].function() for f in names)
        else:
            offered.append(tool)
    return offered
