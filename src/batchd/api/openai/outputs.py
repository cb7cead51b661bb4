"""A batch's output and error files, rendered from its results (contract §3–4 of issue 16; the
spec's §3.5): the output file is its `succeeded` results, the error file every other one, each line
stored by the engine as OpenAI's `{id, custom_id, response, error}`. Canceled and expired requests
are stored as the store writes them for every batch (`{"custom_id", "result": {"type"}}`) and are
rendered here as `batch_cancelled` / `batch_expired` lines, with an `id` derived from the batch and
the request, so a file reads the same every time.

`close` sums the files up once the engine batch has ended: their sizes (a file exists only with at
least one line), `usage` (the output lines' token counts) and their expiry (`output_expires_after`
after the close, and no later than the results' archival, when the lines are gone).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from batchd import models
from batchd.api import services
from batchd.store.openai import Closing, OpenAIBatchRow

SUCCEEDED = models.ResultType.SUCCEEDED.value
UNRUN = {
    models.ResultType.CANCELED.value: (
        "batch_cancelled",
        "This request was not executed because the batch was cancelled.",
    ),
    models.ResultType.EXPIRED.value: (
        "batch_expired",
        "This request could not be executed before the completion window expired.",
    ),
}


def render(batch_id: str, key: int, kind: str, line: bytes) -> bytes:
    """The output or error file line of one result."""
    unrun = UNRUN.get(kind)
    if kind == SUCCEEDED or (unrun is None and not line.startswith(b'{"custom_id"')):
        return line  # the engine's own OpenAI line
    stored = orjson.loads(line)
    if unrun is None:  # an Anthropic-shaped errored line: the request failed before any upstream call
        error = stored.get("result", {}).get("error", {})
        unrun = ("internal_error", str(error.get("message") or "The request failed."))
    code, message = unrun
    request_id = "batch_req_" + hashlib.sha256(f"{batch_id}/{key}".encode()).hexdigest()[:32]
    return (
        orjson.dumps(
            {
                "id": request_id,
                "custom_id": stored.get("custom_id"),
                "response": None,
                "error": {"code": code, "message": message},
            }
        )
        + b"\n"
    )


async def lines(svc: services.Services, row: OpenAIBatchRow, *, output: bool) -> AsyncIterator[bytes]:
    """The output file's lines (`output`) or the error file's, in chunks of many lines."""
    if row.engine_seq is None:
        return
    async for page in svc.store.iter_openai_results(row.engine_seq):
        chunk = [render(row.id, key, kind, line) for key, kind, line in page if (kind == SUCCEEDED) == output]
        if chunk:
            yield b"".join(chunk)


async def close(svc: services.Services, row: OpenAIBatchRow) -> None:
    """Sums up the files of a batch whose engine batch has ended (objects.ended): the first close
    of any process wins, and the batch is terminal from then on."""
    sizes = [0, 0]  # output, error
    usage = _Usage()
    if row.engine_seq is not None and row.archived_at is None:
        async for page in svc.store.iter_openai_results(row.engine_seq):
            # Parsing every line (~1 s for 50,000) off the event loop, a page at a time.
            await asyncio.to_thread(_sum_page, row.id, page, sizes, usage)
    output, error = sizes
    now = time.time()
    expire_at = min(now + row.output_expires_after, row.created_at + svc.settings.retention)
    usage_json = orjson.dumps(usage.totals()).decode()
    await svc.store.close_openai_batch(row.id, Closing(now, output, error, usage_json, expire_at))


def _sum_page(batch_id: str, page: list[tuple[int, str, bytes]], sizes: list[int], usage: _Usage) -> None:
    for key, kind, line in page:
        if kind == SUCCEEDED:
            sizes[0] += len(line)
            usage.add(line)
        else:
            sizes[1] += len(render(batch_id, key, kind, line))


class _Usage:
    """The sums of the output lines' `response.body.usage` (chat, completions and embeddings)."""

    def __init__(self) -> None:
        self.input = self.output = self.cached = self.reasoning = 0

    def add(self, line: bytes) -> None:
        try:
            found: Any = orjson.loads(line)["response"]["body"]["usage"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if not isinstance(found, dict):
            return
        self.input += _int(found.get("prompt_tokens"))
        self.output += _int(found.get("completion_tokens"))
        self.cached += _int((found.get("prompt_tokens_details") or {}).get("cached_tokens"))
        self.reasoning += _int((found.get("completion_tokens_details") or {}).get("reasoning_tokens"))

    def totals(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input,
            "input_tokens_details": {"cached_tokens": self.cached},
            "output_tokens": self.output,
            "output_tokens_details": {"reasoning_tokens": self.reasoning},
            "total_tokens": self.input + self.output,
        }


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
