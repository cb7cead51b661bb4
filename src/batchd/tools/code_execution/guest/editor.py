"""The text editor, run inside the sandbox (so a path, or a symlink a program made, means only
what it means there): `python3 -I -S -c <this file> <view bytes> <file bytes>` with the command as
JSON on stdin; prints the spec's result object as JSON on stdout. A view shows at most <view
bytes> of content (whole lines: `num_lines` says how many); no file over <file bytes> is read.

Not imported by batchd. Paths are relative to /workspace. `view` shows a text file's lines (or
`view_range` [start, end], 1-based, end -1 for the last), an image or PDF as base64, a directory
as a listing two levels deep; `create` writes a file (making its directory); `str_replace`
replaces the one occurrence of `old_str` and answers with the change as a unified-diff hunk.
"""

from __future__ import annotations

import base64
import difflib
import json
import os
import re
import stat
import sys
from typing import Any

WORKSPACE = "/workspace"
IMAGES = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpeg", b"GIF87a": "gif", b"GIF89a": "gif"}
HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
CONTEXT = 3  # lines of context around a replacement, as `diff -u`


class Failure(Exception):
    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


def error(code: str, message: str) -> dict[str, Any]:
    return {
        "type": "text_editor_code_execution_tool_result_error",
        "error_code": code,
        "error_message": message,
    }


def resolve(path: str) -> str:
    return os.path.normpath(os.path.join(WORKSPACE, path))


def read_file(path: str, shown: str, limit: int) -> bytes:
    """A regular file's bytes, opened without blocking (a fifo or device is refused, not read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise Failure("file_not_found", f"{shown}: no such file") from None
    except OSError as exc:
        raise Failure("invalid_tool_input", f"{shown}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Failure("invalid_tool_input", f"{shown}: not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise Failure("invalid_tool_input", f"{shown}: larger than the {limit:,} bytes the editor reads")
    return data


def listing(path: str) -> list[str]:
    lines = []
    for depth1 in sorted(os.scandir(path), key=lambda e: e.name):
        if depth1.name.startswith("."):
            continue
        is_dir = depth1.is_dir(follow_symlinks=False)
        lines.append(depth1.name + ("/" if is_dir else ""))
        if is_dir:
            try:
                children = sorted(os.scandir(depth1.path), key=lambda e: e.name)
            except OSError:
                continue
            for depth2 in children:
                if not depth2.name.startswith("."):
                    slash = "/" if depth2.is_dir(follow_symlinks=False) else ""
                    lines.append(f"{depth1.name}/{depth2.name}{slash}")
    return lines


def view(command: dict[str, Any], view_limit: int, file_limit: int) -> dict[str, Any]:
    shown = command["path"]
    path = resolve(shown)
    if os.path.isdir(path):
        lines = fit(listing(path), view_limit)
        return text_result("".join(line + "\n" for line in lines), len(lines), 1, len(lines))
    data = read_file(path, shown, file_limit)
    kind = next((k for magic, k in IMAGES.items() if data.startswith(magic)), None)
    if kind is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = "webp"
    if kind is not None or data.startswith(b"%PDF-"):
        if len(data) * 4 // 3 > view_limit:
            raise Failure("invalid_tool_input", f"{shown}: too large to view ({len(data):,} bytes)")
        return {
            "type": "text_editor_code_execution_view_result",
            "content": base64.b64encode(data).decode(),
            "file_type": "pdf" if kind is None else "image",
            "num_lines": None,
            "start_line": None,
            "total_lines": None,
        }
    lines = data.decode("utf-8", "replace").splitlines(True)
    start, end = 1, len(lines)
    if command.get("view_range") is not None:
        start, end = command["view_range"]
        end = len(lines) if end == -1 else min(end, len(lines))  # past the end: up to the end
        if not 1 <= start <= max(len(lines), 1) or end < min(start, len(lines)):
            raise Failure(
                "invalid_tool_input",
                f"view_range {command['view_range']} is outside the file's lines 1 to {len(lines)}",
            )
    shown_lines = fit(lines[start - 1 : end], view_limit)
    return text_result("".join(shown_lines), len(shown_lines), start, len(lines))


def fit(lines: list[str], limit: int) -> list[str]:
    """The first lines whose UTF-8 fits in `limit` bytes."""
    size = 0
    for i, line in enumerate(lines):
        size += len(line.encode("utf-8", "replace")) + 1
        if size > limit:
            return lines[:i]
    return lines


def text_result(content: str, num_lines: int, start_line: int, total_lines: int) -> dict[str, Any]:
    return {
        "type": "text_editor_code_execution_view_result",
        "content": content,
        "file_type": "text",
        "num_lines": num_lines,
        "start_line": start_line,
        "total_lines": total_lines,
    }


def create(command: dict[str, Any]) -> dict[str, Any]:
    shown = command["path"]
    path = resolve(shown)
    if os.path.isdir(path):
        raise Failure("invalid_tool_input", f"{shown}: is a directory")
    existed = os.path.lexists(path)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(command["file_text"])
    except OSError as exc:
        raise Failure("invalid_tool_input", f"{shown}: {exc.strerror}") from None
    return {"type": "text_editor_code_execution_create_result", "is_file_update": existed}


def str_replace(command: dict[str, Any], limit: int) -> dict[str, Any]:
    shown, old, new = command["path"], command["old_str"], command["new_str"]
    path = resolve(shown)
    try:
        text = read_file(path, shown, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise Failure("invalid_tool_input", f"{shown}: not a UTF-8 text file") from None
    if not old:
        raise Failure("invalid_tool_input", "old_str is empty")
    count = text.count(old)
    if count == 0:
        raise Failure("invalid_tool_input", f"old_str not found in {shown}")
    if count > 1:
        raise Failure("invalid_tool_input", f"old_str appears {count} times in {shown}; it must be unique")
    updated = text.replace(old, new, 1)
    try:
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(updated)
    except OSError as exc:
        raise Failure("invalid_tool_input", f"{shown}: {exc.strerror}") from None
    return diff(text, updated, text.index(old))


def diff(before: str, after: str, offset: int) -> dict[str, Any]:
    old_lines, new_lines = before.splitlines(), after.splitlines()
    hunk = list(difflib.unified_diff(old_lines, new_lines, n=CONTEXT, lineterm=""))[2:]
    if not hunk:  # old_str == new_str: nothing changed
        line = before.count("\n", 0, offset) + 1
        return replace_result(line, 0, line, 0, [])
    numbers = HUNK.match(hunk[0])
    assert numbers is not None
    a, b, c, d = numbers.groups()
    lines = [line for line in hunk if not line.startswith("@@")]
    return replace_result(int(a), int(b or 1), int(c), int(d or 1), lines)


def replace_result(
    old_start: int, old_count: int, new_start: int, new_count: int, lines: list[str]
) -> dict[str, Any]:
    return {
        "type": "text_editor_code_execution_str_replace_result",
        "old_start": old_start,
        "old_lines": old_count,
        "new_start": new_start,
        "new_lines": new_count,
        "lines": lines,
    }


def main() -> None:
    view_limit, file_limit = int(sys.argv[1]), int(sys.argv[2])
    command = json.load(sys.stdin)
    try:
        if command["command"] == "view":
            result = view(command, view_limit, file_limit)
        elif command["command"] == "create":
            result = create(command)
        else:
            result = str_replace(command, file_limit)
    except Failure as exc:
        result = error(exc.error_code, str(exc))
    sys.stdout.write(json.dumps(result, ensure_ascii=False))


main()
