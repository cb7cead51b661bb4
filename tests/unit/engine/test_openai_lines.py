"""OpenAI batch lines run by the dispatcher on a real SQLite store with the simulator."""

from __future__ import annotations

import re

from batchd import models
from batchd.backends.simulator import SimulatedBackend
from batchd.store.sqlite import SQLiteStore
from tests.unit.engine.openai_harness import chat, line, run_lines


async def test_chat_completion_lines_settle_with_openai_output_lines(store: SQLiteStore) -> None:
    lines = [line(f"c{i}", chat(f"hello number {i}", max_tokens=20)) for i in range(5)]
    batch, found, _ = await run_lines(store, SimulatedBackend(), lines)
    assert batch.request_counts == models.RequestCounts(succeeded=5)
    for i in range(5):
        row = found[f"c{i}"]
        assert re.fullmatch(r"batch_req_[0-9A-Za-z]{24}", row["id"])
        assert row["error"] is None
        response = row["response"]
        assert response["status_code"] == 200 and response["request_id"].startswith("req_")
        body = response["body"]
        assert body["object"] == "chat.completion" and body["model"] == "m"
        choice = body["choices"][0]
        assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
        assert choice["finish_reason"] in ("stop", "length")
        usage = body["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
        assert usage["completion_tokens"] <= 20
