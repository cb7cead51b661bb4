"""The README's quickstart runs as written against a real server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.acceptance.server import ServerProcess

README = Path(__file__).parents[2] / "README.md"


def test_quickstart_runs(server: ServerProcess, capsys: pytest.CaptureFixture[str]) -> None:
    quickstart = README.read_text().split("## Quickstart", 1)[1]
    code = re.search(r"```python\n(.*?)```", quickstart, re.S)
    assert code, "no python block in the quickstart"
    source = (
        code.group(1)
        .replace("http://127.0.0.1:8080", server.base_url)
        .replace("time.sleep(1)", "time.sleep(0.05)")
    )
    exec(compile(source, "README.md", "exec"), {})
    out = capsys.readouterr().out.split("\n")
    assert "q1 succeeded" in out and "q2 succeeded" in out
