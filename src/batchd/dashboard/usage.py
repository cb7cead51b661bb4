"""What a batch used, by model, summed from its result lines, and kept up to date cheaply.

A batch's usage is the sum, over its `succeeded` results, of each message's `usage`: input,
output, cache-read and cache-write tokens and server-tool calls, by the message's model. Summing
100,000 lines on every poll would cost ~0.5 s each time, so `UsageCache` keeps, per batch, the
sum of its *settled prefix*: the requests from the first up to the first one without a result.
A result is final once written (the store keeps the first), so that prefix never changes and each
refresh reads only from its end: the requests running or recently settled, which the engine
claims in create order, plus any that settled out of order. The refresh stops as soon as it has
seen as many results as the batch's counts say exist. Once a batch has ended and its prefix is
the whole batch, the cached sum is its answer for good.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

import orjson

from batchd import models
from batchd.store import Store
from batchd.store.base import RequestEntry

TOKENS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
FIGURES = (*TOKENS, "server_tool_calls")  # what is summed, per model
PAGE = 1000  # results read per store call
KEPT = 512  # batches whose sums are kept (least recently used dropped first)


def empty() -> dict[str, int]:
    return dict.fromkeys(FIGURES, 0)


@dataclasses.dataclass
class Usage:
    """Sums by model; `requests` counts the results summed (any type)."""

    by_model: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    requests: int = 0

    def add_line(self, line: bytes) -> None:
        self.requests += 1
        result = orjson.loads(line).get("result") or {}
        if result.get("type") != "succeeded":
            return
        message = result.get("message") or {}
        usage = message.get("usage") or {}
        model = message.get("model")
        sums = self.by_model.setdefault(model if isinstance(model, str) else "unknown", empty())
        for name in TOKENS:
            value = usage.get(name)
            if isinstance(value, int):
                sums[name] += value
        tools = usage.get("server_tool_use")
        if isinstance(tools, dict):
            sums["server_tool_calls"] += sum(v for v in tools.values() if isinstance(v, int))

    def merged(self, other: Usage) -> Usage:
        out = Usage({m: dict(s) for m, s in self.by_model.items()}, self.requests + other.requests)
        for model, sums in other.by_model.items():
            mine = out.by_model.setdefault(model, empty())
            for name, value in sums.items():
                mine[name] += value
        return out

    def totals(self) -> dict[str, int]:
        out = empty()
        for sums in self.by_model.values():
            for name, value in sums.items():
                out[name] += value
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"by_model": self.by_model, "totals": self.totals()}


@dataclasses.dataclass
class _Prefix:
    usage: Usage = dataclasses.field(default_factory=Usage)
    last: int | None = None  #: the index of the prefix's last request (None: empty prefix)
    complete: bool = False  #: the batch has ended and the prefix is all of it


class UsageCache:
    """Per batch, the usage of its settled prefix (module docstring); one per app."""

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._prefixes: collections.OrderedDict[tuple[str, str], _Prefix] = collections.OrderedDict()
        self.lines_read = 0  #: result lines read from the store so far (for tests and measurement)

    async def usage(self, store: Store, workspace: str, batch: models.Batch) -> Usage:
        key = (workspace, batch.id)
        prefix = self._prefixes.pop(key, None) or _Prefix()
        self._prefixes[key] = prefix
        while len(self._prefixes) > self.kept:
            self._prefixes.popitem(last=False)
        if prefix.complete or batch.archived_at is not None:
            return prefix.usage
        counts = batch.request_counts
        settled = counts.succeeded + counts.errored + counts.canceled + counts.expired
        tail = Usage()
        contiguous, after, more = True, prefix.last, True
        while more and prefix.usage.requests + tail.requests < settled:
            page, more = await self._page(store, workspace, batch.id, after)
            for entry in page:
                if entry.line is None:
                    contiguous = False
                elif contiguous:
                    prefix.usage.add_line(entry.line)
                    prefix.last = entry.index
                else:
                    tail.add_line(entry.line)
            if page:
                after = page[-1].index
        total = settled + counts.processing
        prefix.complete = (
            batch.processing_status is models.ProcessingStatus.ENDED and prefix.usage.requests == total
        )
        return prefix.usage if not tail.requests else prefix.usage.merged(tail)

    async def _page(
        self, store: Store, workspace: str, batch_id: str, after: int | None
    ) -> tuple[list[RequestEntry], bool]:
        page, more = await store.list_results(workspace, batch_id, after_index=after, limit=PAGE)
        self.lines_read += sum(1 for e in page if e.line is not None)
        return page, more
