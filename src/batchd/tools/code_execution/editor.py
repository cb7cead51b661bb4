"""The text editor's host side: checks a command, runs `guest/editor.py` in the sandbox, and
returns the spec's content object (docs: server-tools.md §4.2).

The editor runs inside the sandbox, as the program's user and with the program's view of the
files, so a symlink a program made points only where the program could go itself.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from batchd.tools.code_execution.execution import Execution
from batchd.tools.code_execution.limits import Limits

SOURCE = resources.files("batchd.tools.code_execution").joinpath("guest/editor.py").read_text()
COMMANDS = {"view": (), "create": ("file_text",), "str_replace": ("old_str", "new_str")}
RESULT_TYPES = frozenset(
    {
        "text_editor_code_execution_view_result",
        "text_editor_code_execution_create_result",
        "text_editor_code_execution_str_replace_result",
        "text_editor_code_execution_tool_result_error",
    }
)
EXPANSION = 8  # the JSON of a view may be this many times its content's bytes (escapes, base64)


def error(code: str, message: str | None) -> dict[str, Any]:
    return {
        "type": "text_editor_code_execution_tool_result_error",
        "error_code": code,
        "error_message": message,
    }


def invalid(command: Mapping[str, Any]) -> str | None:
    """Why `command` is not a text editor command, or None."""
    name = command.get("command")
    if name not in COMMANDS:
        return f"command must be one of {', '.join(COMMANDS)}, not {name!r}"
    path = command.get("path")
    if not isinstance(path, str) or not path or "\0" in path:
        return "path must be a non-empty string"
    for field in COMMANDS[name]:
        if not isinstance(command.get(field), str):
            return f"{field} must be a string"
    view_range = command.get("view_range")
    if name == "view" and view_range is not None and not _is_range(view_range):
        return "view_range must be [start, end]: 1-based line numbers, end -1 for the last line"
    return None


def _is_range(value: object) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in value)
        and value[0] >= 1
        and (value[1] == -1 or value[1] >= value[0])
    )


def guest_command(python: str, limits: Limits) -> list[str]:
    return [python, "-I", "-S", "-c", SOURCE, str(limits.output_bytes), str(limits.file_size_bytes)]


def guest_limits(limits: Limits) -> Limits:
    """The editor's own run: room on stdout for a full view as JSON."""
    return dataclasses.replace(limits, output_bytes=EXPANSION * limits.output_bytes + (64 << 10))


def request(command: Mapping[str, Any]) -> bytes:
    fields = ("command", "path", "view_range", *COMMANDS[command["command"]])
    return json.dumps({k: command[k] for k in fields if k in command}).encode()


def result(execution: Execution) -> dict[str, Any]:
    """The editor's answer as the spec's object; a run that failed is an error object."""
    if execution.timed_out:
        return error("execution_time_exceeded", "the text editor did not finish in time")
    try:
        answer = json.loads(execution.stdout) if execution.return_code == 0 else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or answer.get("type") not in RESULT_TYPES:
        last = execution.stderr.strip().splitlines()[-1:] or [f"exit code {execution.return_code}"]
        return error("unavailable", f"the text editor failed: {last[0][:300]}")
    return answer
