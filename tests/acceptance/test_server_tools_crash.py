"""A batch of 1,000 web-search requests on an OpenAI-compatible route, `kill -9` of `batchd serve`
twice while the server-tool loops are mid-flight: after restarts every request has exactly one
result, succeeded, and no written result changed.

The upstream (tests/acceptance/tool_upstream.py) lives in the test process, so it outlives the
kills; its latency keeps each request's two model calls in flight long enough for a kill to land
between a search and the answer.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import orjson

from tests.acceptance.conftest import (
    assert_recovered,
    kill_9_at_random,
    make_client,
    results_in_sqlite,
    wait_progress,
)
from tests.acceptance.server import ServerProcess
from tests.acceptance.tool_upstream import ToolUpstream

N = 1_000
KILLS = 2
CORPUS = [
    {"url": f"https://pages.example/{i}", "title": f"Page {i}", "text": f"Fact number {i} is true. More."}
    for i in range(50)
]


def test_server_tool_batch_survives_kill_9(tmp_path: Path) -> None:
    source = tmp_path / "corpus.jsonl"
    source.write_bytes(b"\n".join(orjson.dumps(d) for d in CORPUS))
    index = tmp_path / "index.db"
    subprocess.run(
        [sys.executable, "-m", "batchd", "index", "build", str(source), "--out", str(index)],
        check=True,
        capture_output=True,
    )
    upstream = ToolUpstream(latency=0.1).start()
    config = tmp_path / "batchd.toml"
    config.write_text(
        f'[web_search]\nindex = "{index}"\n'
        f'[[routes]]\nmodel = "oa-*"\nbackend = "openai"\nbase_url = "{upstream.url}/v1"\nconcurrency = 32\n'
    )
    srv = ServerProcess(
        tmp_path / "data", {"BATCHD_CONFIG": str(config), "BATCHD_MAINTENANCE_INTERVAL": "0.5s"}
    ).start()
    try:
        tools = [{"type": "web_search_20250305", "name": "web_search"}]
        requests = [
            {
                "custom_id": f"req-{i}",
                "params": {
                    "model": "oa-model",
                    "max_tokens": 64,
                    "tools": tools,
                    "messages": [{"role": "user", "content": f"What is fact number {i % 50}?"}],
                },
            }
            for i in range(N)
        ]
        with make_client(srv.base_url) as client:
            batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        wait_progress(srv.base_url, batch.id)
        written = functools.partial(results_in_sqlite, srv)
        snapshots = kill_9_at_random([srv], srv.base_url, batch.id, N, KILLS, written)
        assert_recovered(srv.base_url, batch.id, N, snapshots, written, timeout=60)
        with make_client(srv.base_url) as client:
            for line in client.messages.batches.results(batch.id):
                message = line.result.message  # type: ignore[union-attr]
                kinds = [b.type for b in message.content]
                assert kinds == ["server_tool_use", "web_search_tool_result", "text"], (line.custom_id, kinds)
                assert message.usage.server_tool_use.web_search_requests == 1  # type: ignore[union-attr]
                i = int(line.custom_id.removeprefix("req-")) % 50
                assert message.content[2].text.startswith(f"According to the search, Fact number {i} is true")  # type: ignore[union-attr]
    finally:
        srv.stop()
        upstream.stop()
