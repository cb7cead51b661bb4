"""Prefix-aware dispatch: run requests that share a prompt prefix next to each other.

Engines with prefix caching (vLLM, SGLang, llama.cpp) reuse the KV cache of a prompt prefix only
while it is still cached, and llama.cpp gives a new request the slot whose cached prompt shares the
most with it. A batch in arrival order interleaves its prefixes, so each slot keeps switching
between them; grouped, each prefix is computed once per slot and then read from cache.

The prefix is what comes before the part that varies in the usual batch: the model, `system`,
`tools` and `tool_choice`, every message but the last, and every content block of the last message
but its last. The dispatcher starts the requests of a claimed chunk in `order()`'s order; the route's
semaphore admits them in that order (asyncio semaphores are FIFO).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from batchd import models


def prefix_key(raw: bytes) -> bytes:
    """A digest of the request's shareable prompt prefix (params that do not parse: their own)."""
    try:
        params = orjson.loads(raw)
        messages = params.get("messages") or []
        head: list[Any] = list(messages[:-1])
        if messages and isinstance(messages[-1], dict):
            content = messages[-1].get("content")
            if isinstance(content, list) and len(content) > 1:
                head.append(content[:-1])
        parts = [
            params.get("model"),
            params.get("system"),
            params.get("tools"),
            params.get("tool_choice"),
            head,
        ]
        blob = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        blob = raw
    return hashlib.blake2b(blob, digest_size=12).digest()


def order(claimed: Sequence[models.ClaimedRequest]) -> list[models.ClaimedRequest]:
    """The first request of each prefix, then the others grouped by prefix, in first-appearance order."""
    if len(claimed) < 3:
        return list(claimed)
    groups: dict[bytes, list[models.ClaimedRequest]] = {}
    for req in claimed:
        groups.setdefault(prefix_key(req.params), []).append(req)
    if len(groups) in (1, len(claimed)):
        return list(claimed)
    # One request per prefix first, then the rest grouped: requests with the same prefix started at
    # the same moment would each compute it (no cache holds it yet), so each prefix is computed once
    # by its leader, and its followers, arriving together later, find it cached.
    leaders = [group[0] for group in groups.values()]
    return leaders + [req for group in groups.values() for req in group[1:]]
