"""What a batch used, by model, summed from its result lines, and kept up to date cheaply.

A batch's usage is the sum, over its `succeeded` results, of each message's `usage`: input,
output, cache-read and cache-write tokens and server-tool calls, by the message's model. An OpenAI
batch's output lines count too (`Usage._add_openai`): prompt, completion and cached tokens. Summing
100,000 lines on every poll would cost about a second each time, so `UsageCache` keeps, per batch,
the sums of its settled *blocks*: PAGE consecutive requests that all have their result. A result
is final once written (the store keeps the first), so such a block never changes; a refresh reads
only the blocks still unsettled, and stops once it has counted as many results as the batch's
counts say exist (the blocks after are all pending). The engine claims in create order, so while a
batch runs that is the block or two being worked on, plus any block holding a request that
settles late (a retry). Of an unsettled block the sums of its settled *prefix* (its first requests,
every one with a result) are kept too, and a refresh reads the block from the prefix's end, STEP
requests at a time, only until it has found as many results as the counts say exist: with fair
claims every open batch has a block being worked on, and re-reading each whole (1,000 lines per
batch per page view) cost the list page ~0.5 s with ten batches running. Settled blocks from the
first on are kept as one sum. Once a batch has ended
its total is kept whole and nothing is read again.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Any

import orjson

from batchd import models
from batchd.store import Store

TOKENS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
FIGURES = (*TOKENS, "server_tool_calls")  # what is summed, per model
PAGE = 1000  # requests in a block
STEP = 100  # requests read per store call: a running block is read up to its last result, not whole
KEPT = 512  # batches whose sums are kept (least recently used dropped first)


def empty() -> dict[str, int]:
    return dict.fromkeys(FIGURES, 0)


@dataclasses.dataclass
class Usage:
    """Sums by model; `requests` counts the results summed (any type)."""

    by_model: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    requests: int = 0
    summed: bool = True  #: False: the sums so far, a `Budget` ran out before every result was read

    def add_line(self, line: bytes) -> None:
        self.requests += 1
        found = orjson.loads(line)
        if "result" not in found and "response" in found:
            self._add_openai(found)
            return
        result = found.get("result") or {}
        if result.get("type") != "succeeded":
            return
        message = result.get("message") or {}
        usage = message.get("usage") or {}
        sums = self._sums(message.get("model"))
        for name in TOKENS:
            value = usage.get(name)
            if isinstance(value, int):
                sums[name] += value
        tools = usage.get("server_tool_use")
        if isinstance(tools, dict):
            sums["server_tool_calls"] += sum(v for v in tools.values() if isinstance(v, int))

    def _add_openai(self, line: dict[str, Any]) -> None:
        """An OpenAI output line (api/openai/outputs.py): a 2xx reply's `usage`, by its body's model.
        prompt_tokens count as input (OpenAI's include the cached ones, which are also counted as
        cache reads), completion_tokens as output."""
        response = line.get("response") or {}
        code = response.get("status_code")
        body = response.get("body")
        if not (isinstance(code, int) and 200 <= code < 300 and isinstance(body, dict)):
            return
        usage = body.get("usage") or {}
        sums = self._sums(body.get("model"))
        for ours, theirs in (("input_tokens", "prompt_tokens"), ("output_tokens", "completion_tokens")):
            value = usage.get(theirs)
            if isinstance(value, int):
                sums[ours] += value
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        if isinstance(cached, int):
            sums["cache_read_input_tokens"] += cached

    def _sums(self, model: object) -> dict[str, int]:
        return self.by_model.setdefault(model if isinstance(model, str) else "unknown", empty())

    def merged(self, other: Usage) -> Usage:
        out = Usage(
            {m: dict(s) for m, s in self.by_model.items()},
            self.requests + other.requests,
            self.summed and other.summed,
        )
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
        return {"by_model": self.by_model, "totals": self.totals(), "summed": self.summed}


@dataclasses.dataclass
class Budget:
    """Blocks a page may read from the store to sum usage (the rest on its next refresh): the list
    page of 25 batches of 100,000 requests never sums 2.5 million lines in one request. With a
    `deadline` (time.monotonic()) no block is started after it but the first, so a page on a busy
    server stays quick and every view still makes progress."""

    blocks: int
    deadline: float | None = None
    read: int = 0  #: blocks read so far

    def spent(self) -> bool:
        if self.blocks <= 0:
            return True
        return self.read > 0 and self.deadline is not None and time.monotonic() >= self.deadline

    def take(self) -> None:
        self.blocks -= 1
        self.read += 1


@dataclasses.dataclass
class _Sums:
    blocks: dict[int, Usage] = dataclasses.field(default_factory=dict)  #: settled blocks' sums
    #: Of unsettled blocks, the sums of their settled prefix (`requests` is its length)
    prefixes: dict[int, Usage] = dataclasses.field(default_factory=dict)
    head: Usage = dataclasses.field(default_factory=Usage)  #: the sums of blocks 0 to head_blocks - 1
    head_blocks: int = 0  #: blocks from the first that are all settled, summed in `head`
    complete: Usage | None = None  #: the whole batch's, once it has ended and been summed


class UsageCache:
    """Per batch, the sums of its settled blocks (module docstring); one per app."""

    def __init__(self, kept: int = KEPT, page: int = PAGE) -> None:
        self.kept = kept
        self.page = page  #: requests in a block
        self._batches: collections.OrderedDict[tuple[str, str], _Sums] = collections.OrderedDict()
        self.step = min(STEP, page)  #: requests read per store call within a block
        self.lines_read = 0  #: result lines read from the store so far (for tests and measurement)
        self.entries_read = 0  #: requests listed, with a result or not

    async def usage(
        self, store: Store, workspace: str, batch: models.Batch, budget: Budget | None = None
    ) -> Usage:
        """The batch's usage; with a `budget`, only as many blocks as it has left are read (the
        answer is then `summed=False` and the blocks read are kept for the next call)."""
        key = (workspace, batch.id)
        sums = self._batches.pop(key, None) or _Sums()
        self._batches[key] = sums
        while len(self._batches) > self.kept:
            self._batches.popitem(last=False)
        if sums.complete is not None or batch.archived_at is not None:
            return sums.complete or Usage()
        counts = batch.request_counts
        settled = counts.succeeded + counts.errored + counts.canceled + counts.expired
        total = sums.head.merged(Usage())
        block = sums.head_blocks
        while total.requests < settled:
            found = sums.blocks.get(block)
            if found is None:
                if budget is not None:
                    if budget.spent():
                        total.summed = False
                        break
                    budget.take()
                before = sums.prefixes.pop(block, None) or Usage()
                needed = settled - total.requests
                found, prefix, more = await self._block(store, workspace, batch.id, block, before, needed)
                if prefix is None:
                    sums.blocks[block] = found
                else:
                    sums.prefixes[block] = prefix
                if not more:
                    total = total.merged(found)
                    break
            total = total.merged(found)
            block += 1
        while sums.head_blocks in sums.blocks:  # settled blocks from the first on: one sum
            sums.head = sums.head.merged(sums.blocks.pop(sums.head_blocks))
            sums.head_blocks += 1
        if batch.processing_status is models.ProcessingStatus.ENDED and total.summed:
            sums.complete, sums.blocks, sums.prefixes = total, {}, {}
        return total

    async def _block(
        self, store: Store, workspace: str, batch_id: str, block: int, prefix: Usage, needed: int
    ) -> tuple[Usage, Usage | None, bool]:
        """The sums of one block's results, read past its settled `prefix` in steps of STEP
        requests until the block's end, or until it holds `needed` results (its prefix's included:
        the batch's counts know of no more); that prefix grown by what was read (None once every
        request of the block has a result); whether more requests follow what was read."""
        grown, rest = prefix.merged(Usage()), Usage()  # a copy: the caller's is not changed
        gap, more = False, True
        start, end = block * self.page + prefix.requests, (block + 1) * self.page
        while start < end and grown.requests + rest.requests < needed:
            limit = min(self.step, end - start)
            page, more = await store.list_results(
                workspace, batch_id, after_index=start - 1 if start else None, limit=limit
            )
            self.entries_read += len(page)
            for entry in page:
                if entry.line is None:
                    gap = True  # what follows is summed, not kept: the gap may fill later
                else:
                    (rest if gap else grown).add_line(entry.line)
            start += len(page)
            if len(page) < limit:  # the batch ends in this block
                end = start
        self.lines_read += grown.requests - prefix.requests + rest.requests
        found = grown.merged(rest)
        whole = start >= end and not gap and grown.requests > 0
        return found, None if whole else grown, more
