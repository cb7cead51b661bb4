"""Code execution through a real llama.cpp: `batchd serve --gguf` with the tiny scripted coding
model (tests/acceptance/tiny_gguf.py, `code=True`), the real sandbox and the official SDK.

The model calls `bash_code_execution` with a command that prints 17 × 23 and writes it to
`$OUTPUT_DIR`, then answers. A batch of 200 such requests survives `kill -9` of batchd twice: every
request has exactly one result, each with the sandbox's real output, and once the containers'
idle time has passed no container home, row or sandbox process is left, the killed runs' included.
"""

from __future__ import annotations

import functools
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("xllamacpp", reason="the llamacpp tests need the xllamacpp wheel")
pytest.importorskip("gguf", reason="building the tiny model needs the gguf package")
pytest.importorskip("tokenizers", reason="building the tiny model needs the tokenizers package")
pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (Debian: bubblewrap)")

from batchd.config import Settings  # noqa: E402
from batchd.tools.code_execution.sandbox import Sandbox  # noqa: E402
from batchd.tools.kit import containers_dir  # noqa: E402
from tests.acceptance import tiny_gguf  # noqa: E402
from tests.acceptance.conftest import (  # noqa: E402
    assert_recovered,
    kill_9_at_random,
    make_client,
    results_in_sqlite,
    wait_progress,
)
from tests.acceptance.server import ServerProcess  # noqa: E402

N = 200
KILLS = 2
IDLE = 3.0  # seconds a container lives unused: short, so the test sees every one go


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServerProcess]:
    model = tiny_gguf.build(tmp_path / "coder.gguf", code=True)
    env = {
        "BATCHD_GGUF": str(model),
        "BATCHD_GGUF_PARALLEL": "4",
        "BATCHD_MAINTENANCE_INTERVAL": "0.5s",
        "BATCHD_CODE_EXECUTION_CONTAINER_IDLE": f"{IDLE}s",
        "BATCHD_CODE_EXECUTION_MAX_CONTAINERS": "4",
    }
    proc = ServerProcess(tmp_path / "d", env).start()
    yield proc
    proc.stop()


def test_code_batch_on_llamacpp_survives_kill_9_and_leaves_nothing_behind(served: ServerProcess) -> None:
    tools = [{"type": "code_execution_20250825", "name": "code_execution"}]
    requests = [
        {"custom_id": f"req-{i}", "params": {"model": "tiny", "max_tokens": 64, "tools": tools,
                                             "messages": [{"role": "user", "content": f"Multiply ({i})"}]}}
        for i in range(N)
    ]  # fmt: skip
    with make_client(served.base_url, timeout=60) as client:
        batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    wait_progress(served.base_url, batch.id)
    written = functools.partial(results_in_sqlite, served)
    snapshots = kill_9_at_random([served], served.base_url, batch.id, N, KILLS, written)
    assert_recovered(served.base_url, batch.id, N, snapshots, written, timeout=180)
    containers: set[str] = set()
    with make_client(served.base_url, timeout=60) as client:
        for line in client.messages.batches.results(batch.id):
            message = line.result.message  # type: ignore[union-attr]
            kinds = [b.type for b in message.content]
            assert kinds == ["server_tool_use", "bash_code_execution_tool_result", "text"], (
                line.custom_id,
                kinds,
            )
            call, result, answer = message.content
            assert call.input == {"command": tiny_gguf.CODE_COMMAND}
            assert (result.content.stdout, result.content.return_code) == ("391\n", 0)
            (output,) = result.content.content
            assert client.beta.files.download(output.file_id).read() == b"391\n"
            assert answer.text == tiny_gguf.CODE_ANSWER
            containers.add(message.container.id)
    assert len(containers) == N  # a container per request: none shared by accident
    # The killed runs' containers too: gone once idle, from the disk, the store and the process table.
    settings = Settings(data_dir=str(served.data_dir))
    homes = containers_dir(settings)  # the default: as root, outside the private data directory
    deadline = time.monotonic() + IDLE + 15
    while time.monotonic() < deadline:
        conn = sqlite3.connect(f"file:{served.data_dir / 'batchd.db'}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT count(*) FROM containers").fetchone()[0]
        finally:
            conn.close()
        left = [p.name for p in homes.iterdir() if p.name.startswith("container_")] if homes.exists() else []
        if not rows and not left:
            break
        time.sleep(0.5)
    assert rows == 0 and left == [], (rows, left[:5])
    assert Sandbox(root=homes).processes() == []  # no sandbox of these containers is running
