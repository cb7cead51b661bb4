"""OpenAI batches on the engine's harness: `batch_…` batches of input-file lines, their lines read back."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from batchd import models
from batchd.backends.base import Backend
from batchd.engine.router import Route, Router
from batchd.metrics import Metrics
from batchd.store import Store
from tests.unit.engine import harness

WS = harness.WS


def line(custom_id: str, body: dict[str, Any], url: str = "/v1/chat/completions") -> bytes:
    """An input file's line as the API stores it: the validated line's JSON bytes."""
    return orjson.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body})


def chat(text: str, model: str = "m", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


async def make_batch(store: Store, lines: Sequence[bytes], expires_in: float = 100) -> models.Batch:
    now = time.time()
    return await store.create_batch(
        workspace=WS,
        custom_ids=[orjson.loads(raw)["custom_id"] for raw in lines],
        params=lines,
        now=now,
        expires_at=now + expires_in,
        batch_id=models.new_openai_batch_id(),
    )


async def lines_of(store: Store, batch_id: str) -> dict[str, dict[str, Any]]:
    """custom_id -> its output or error line; exactly one per custom_id."""
    out: dict[str, dict[str, Any]] = {}
    async for chunk in store.iter_results(WS, batch_id):
        for raw in chunk.splitlines():
            row = orjson.loads(raw)
            assert row["custom_id"] not in out, f"two lines for {row['custom_id']}"
            out[row["custom_id"]] = row
    return out


async def run_lines(
    store: Store,
    target: Backend | Route | Router,
    lines: Sequence[bytes],
    *,
    timeout: float = 20,
    **env: str,
) -> tuple[models.Batch, dict[str, dict[str, Any]], Metrics]:
    """Runs one OpenAI batch of `lines` to its end on a dispatcher with settings from `env`."""
    settings = harness.settings_of(**env)
    batch = await make_batch(store, lines)
    metrics = Metrics()
    async with harness.running(store, target, settings, metrics):
        ended = await harness.until_ended(store, batch.id, timeout)
    found = await lines_of(store, batch.id)
    assert len(found) == len(lines)
    return ended, found, metrics
