"""Shared seams of the OpenAI wire's acceptance tests: the official `openai` SDK against a real
`batchd serve`, input files, and waiting for a batch to end."""

from __future__ import annotations

import time
from typing import Any

import openai
import orjson

MODEL = "gpt-4o-mini"
CHAT = "/v1/chat/completions"
TERMINAL = {"completed", "failed", "expired", "cancelled"}


def make_openai(base_url: str, api_key: str = "test-key", **kwargs: Any) -> openai.OpenAI:
    """The official SDK, validating every response strictly and never retrying."""
    return openai.OpenAI(
        base_url=base_url + "/v1", api_key=api_key, _strict_response_validation=True, max_retries=0, **kwargs
    )


def make_async_openai(base_url: str, api_key: str = "test-key") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=base_url + "/v1", api_key=api_key, _strict_response_validation=True, max_retries=0
    )


def chat_line(
    custom_id: str, text: str = "Hello there", *, model: str = MODEL, url: str = CHAT
) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": url,
        "body": {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": text}]},
    }


def jsonl(lines: list[Any]) -> bytes:
    return b"".join((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines)


def wait_terminal(client: openai.OpenAI, batch_id: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in TERMINAL:
            return batch
        assert time.monotonic() < deadline, f"batch {batch_id} still {batch.status}"
        time.sleep(0.05)
