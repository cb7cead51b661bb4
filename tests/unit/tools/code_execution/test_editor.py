"""The text editor, run inside the sandbox: view, create, str_replace, and its errors."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from batchd.tools.code_execution.sandbox import Sandbox
from tests.unit.tools.code_execution.conftest import SECRET, sh

VIEW = "text_editor_code_execution_view_result"
ERROR = "text_editor_code_execution_tool_result_error"


def error(code: str, message: str | None = None) -> dict[str, Any]:
    return {"type": ERROR, "error_code": code, "error_message": message}


async def test_create_view_and_update(sandbox: Sandbox, home: Path) -> None:
    created = await sandbox.edit(
        home, {"command": "create", "path": "notes/a.txt", "file_text": "one\ntwo\nthree\n"}
    )
    assert created == {"type": "text_editor_code_execution_create_result", "is_file_update": False}
    assert (home / "work" / "notes" / "a.txt").read_text() == "one\ntwo\nthree\n"
    again = await sandbox.edit(
        home, {"command": "create", "path": "/workspace/notes/a.txt", "file_text": "1\n2\n3\n4\n"}
    )
    assert again["is_file_update"] is True
    assert await sandbox.edit(home, {"command": "view", "path": "notes/a.txt"}) == {
        "type": VIEW,
        "content": "1\n2\n3\n4\n",
        "file_type": "text",
        "num_lines": 4,
        "start_line": 1,
        "total_lines": 4,
    }
    ranged = await sandbox.edit(home, {"command": "view", "path": "notes/a.txt", "view_range": [2, 3]})
    assert (ranged["content"], ranged["num_lines"], ranged["start_line"]) == ("2\n3\n", 2, 2)
    to_end = await sandbox.edit(home, {"command": "view", "path": "notes/a.txt", "view_range": [3, -1]})
    assert to_end["content"] == "3\n4\n"
    past = await sandbox.edit(home, {"command": "view", "path": "notes/a.txt", "view_range": [9, 12]})
    assert past["type"] == ERROR and past["error_code"] == "invalid_tool_input"


async def test_view_of_a_directory_lists_it(sandbox: Sandbox, home: Path) -> None:
    await sh(sandbox, home, "mkdir -p src/pkg && touch src/main.py src/pkg/deep.py README .hidden")
    listing = await sandbox.edit(home, {"command": "view", "path": "."})
    assert listing["content"] == "README\nsrc/\nsrc/main.py\nsrc/pkg/\n"
    assert listing["file_type"] == "text" and listing["num_lines"] == 4


async def test_view_of_an_image_and_a_pdf(sandbox: Sandbox, home: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    (home / "work" / "plot.png").write_bytes(png)
    (home / "work" / "doc.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    image = await sandbox.edit(home, {"command": "view", "path": "plot.png"})
    assert (image["file_type"], base64.b64decode(image["content"]), image["num_lines"]) == (
        "image",
        png,
        None,
    )
    assert (await sandbox.edit(home, {"command": "view", "path": "doc.pdf"}))["file_type"] == "pdf"


async def test_str_replace_answers_with_a_diff_hunk(sandbox: Sandbox, home: Path) -> None:
    text = '{\n  "name": "x",\n  "debug": true,\n  "level": 3\n}\n'
    await sandbox.edit(home, {"command": "create", "path": "config.json", "file_text": text})
    command = {
        "command": "str_replace",
        "path": "config.json",
        "old_str": '"debug": true',
        "new_str": '"debug": false',
    }
    assert await sandbox.edit(home, command) == {
        "type": "text_editor_code_execution_str_replace_result",
        "old_start": 1,
        "old_lines": 5,
        "new_start": 1,
        "new_lines": 5,
        "lines": [" {", '   "name": "x",', '-  "debug": true,', '+  "debug": false,', '   "level": 3', " }"],
    }
    assert (home / "work" / "config.json").read_text() == text.replace("true", "false")


@pytest.mark.parametrize(
    ("old", "message"),
    [
        ("absent", "old_str not found in f.txt"),
        ("same", "old_str appears 2 times in f.txt; it must be unique"),
    ],
)
async def test_str_replace_needs_exactly_one_occurrence(
    sandbox: Sandbox, home: Path, old: str, message: str
) -> None:
    await sandbox.edit(home, {"command": "create", "path": "f.txt", "file_text": "same\nsame\n"})
    done = await sandbox.edit(
        home, {"command": "str_replace", "path": "f.txt", "old_str": old, "new_str": "x"}
    )
    assert done == error("invalid_tool_input", message)
    assert (home / "work" / "f.txt").read_text() == "same\nsame\n"


async def test_missing_files(sandbox: Sandbox, home: Path) -> None:
    assert await sandbox.edit(home, {"command": "view", "path": "nope.txt"}) == error(
        "file_not_found", "nope.txt: no such file"
    )
    done = await sandbox.edit(
        home, {"command": "str_replace", "path": "nope.txt", "old_str": "a", "new_str": "b"}
    )
    assert done["error_code"] == "file_not_found"


@pytest.mark.parametrize(
    "command",
    [
        {"command": "delete", "path": "a"},
        {"command": "view"},
        {"command": "view", "path": ""},
        {"command": "create", "path": "a"},
        {"command": "str_replace", "path": "a", "old_str": "x"},
        {"command": "view", "path": "a", "view_range": [0, 2]},
        {"command": "view", "path": "a", "view_range": [3, 2]},
        {"command": "view", "path": "a", "view_range": "1-2"},
    ],
)
async def test_invalid_commands(sandbox: Sandbox, home: Path, command: dict[str, Any]) -> None:
    done = await sandbox.edit(home, command)
    assert done["type"] == ERROR and done["error_code"] == "invalid_tool_input" and done["error_message"]


async def test_files_the_editor_must_not_read_or_write(sandbox: Sandbox, home: Path) -> None:
    await sh(sandbox, home, "mkfifo fifo")
    assert (await sandbox.edit(home, {"command": "view", "path": "fifo"}))[
        "error_message"
    ] == "fifo: not a regular file"
    assert (await sandbox.edit(home, {"command": "view", "path": "/dev/zero"}))[
        "error_code"
    ] == "invalid_tool_input"
    done = await sandbox.edit(home, {"command": "create", "path": "/usr/evil", "file_text": "x"})
    assert done == error("invalid_tool_input", "/usr/evil: Read-only file system")
    assert not Path("/usr/evil").exists()


async def test_symlinks_a_program_made_see_only_the_sandbox(sandbox: Sandbox, home: Path, base: Path) -> None:
    secret = base / "batchd.db"
    await sh(
        sandbox, home, f"ln -s {secret} db; ln -s /etc/hostname host; ln -s /etc/passwd pw; ln -s {base} dir"
    )
    assert (await sandbox.edit(home, {"command": "view", "path": "db"}))["error_code"] == "file_not_found"
    assert (await sandbox.edit(home, {"command": "view", "path": "host"}))["error_code"] == "file_not_found"
    passwd = await sandbox.edit(home, {"command": "view", "path": "pw"})
    assert (
        "sandbox:x:1000" in passwd["content"] and "root:x:0:0:root:/root:/bin/bash" not in passwd["content"]
    )
    assert (await sandbox.edit(home, {"command": "view", "path": "dir"}))["error_code"] == "file_not_found"
    host_passwd = Path("/etc/passwd").read_text()
    done = await sandbox.edit(home, {"command": "create", "path": "pw", "file_text": "owned\n"})
    assert done["type"] == ERROR
    done = await sandbox.edit(home, {"command": "create", "path": "db", "file_text": "owned\n"})
    assert done["type"] == ERROR  # the link's target directory does not exist in the sandbox
    assert Path("/etc/passwd").read_text() == host_passwd
    assert SECRET in secret.read_text()


async def test_a_large_file_is_viewed_in_part(sandbox: Sandbox, home: Path) -> None:
    (home / "work" / "big.txt").write_text("".join(f"line {i}\n" for i in range(20_000)))
    done = await sandbox.edit(home, {"command": "view", "path": "big.txt"})
    assert done["total_lines"] == 20_000 and 0 < done["num_lines"] < 20_000
    assert len(done["content"].encode()) <= 64 << 10
    assert done["content"].startswith("line 0\nline 1\n")
