"""What the model reads back from a code-execution call: the result block's content as text.

The same text is produced when a call runs and when a later turn sends its result back, so the
model sees one conversation whichever request it is in.
"""

from __future__ import annotations

from typing import Any

_RUN_RESULTS = frozenset({"code_execution_result", "bash_code_execution_result"})


def result(content: dict[str, Any], files: dict[str, str] | None = None) -> str:
    """The tool result text of one result block's `content`; `files` names the output files by id
    (a later turn knows only their ids)."""
    kind = content.get("type")
    if kind in _RUN_RESULTS or kind == "encrypted_code_execution_result":
        return _run(content, files or {})
    if kind == "text_editor_code_execution_view_result":
        return _view(content)
    if kind == "text_editor_code_execution_create_result":
        return "The file was updated." if content.get("is_file_update") else "The file was created."
    if kind == "text_editor_code_execution_str_replace_result":
        lines = content.get("lines") or []
        return "The file was edited:\n" + "\n".join(str(line) for line in lines)
    message = content.get("error_message")
    return f"Error: the tool call failed ({content.get('error_code')})." + (f" {message}" if message else "")


def _run(content: dict[str, Any], files: dict[str, str]) -> str:
    stdout = content.get("stdout", content.get("encrypted_stdout", ""))
    parts = [f"return code: {content.get('return_code')}"]
    if stdout:
        parts.append(f"stdout:\n{stdout}")
    if content.get("stderr"):
        parts.append(f"stderr:\n{content['stderr']}")
    outputs = [item.get("file_id") for item in content.get("content") or () if isinstance(item, dict)]
    if outputs:
        names = ", ".join(f"{files.get(str(f), 'a file')} ({f})" for f in outputs)
        parts.append(f"files written to $OUTPUT_DIR: {names}")
    return "\n".join(parts)


def _view(content: dict[str, Any]) -> str:
    if content.get("file_type") != "text":
        return f"(a {content.get('file_type')} file)"
    start = content.get("start_line") or 1
    lines = str(content.get("content", "")).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    total = content.get("total_lines")
    numbered = "\n".join(f"{start + i:6}\t{line}" for i, line in enumerate(lines))
    return numbered + (f"\n({total} lines in all)" if total is not None else "")
