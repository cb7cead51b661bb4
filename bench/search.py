"""Server tools: the `local` search provider's latency, and the loop's own cost per iteration.

    python -m bench.search 100000

1. **Search latency.** A synthetic corpus of n documents (~120 words each from a 5,000-word
   vocabulary with a Zipf-like spread, so common and rare words both occur) is indexed with the
   builder of `batchd index build`; then QUERIES queries of 2–4 words, each word drawn from the same
   spread, run one after the other through `LocalProvider.search` (5 results, as the tool asks):
   p50/p99 of each call's wall time, the thread hop included.
2. **The loop's cost.** One search-and-answer request (the model calls web_search, batchd runs it on
   that index, the model answers quoting it) through `ToolLoop` around the real `openai` backend
   against a loopback model server (tests/acceptance/tool_upstream.py) answering after UPSTREAM_MS,
   as a small model on a GPU would; ROUNDS requests one after the other. The wall time of each is
   compared with the time its two upstream calls took (measured at the backend): the difference is
   what batchd adds (request rewriting, the search, the blocks, the tokens).
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.acceptance.tool_upstream import ToolUpstream

from bench.common import Row

QUERIES = 1000
TARGET_P99_MS = 20.0
VOCABULARY = 5000
WORDS_PER_DOC = 120
UPSTREAM_MS = 200.0  # per model call, a small model's short answer on a GPU
ROUNDS = 30
TARGET_OVERHEAD = 0.05  # of the request's wall time


def log(message: str) -> None:
    print(f"[search] {message}", file=sys.stderr, flush=True)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _words(rng: random.Random) -> list[str]:
    syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pe", "do", "gra", "lin"]
    found: set[str] = set()
    while len(found) < VOCABULARY:
        found.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(found)


def corpus(n: int, rng: random.Random, words: list[str]) -> Any:
    from batchd.tools.web_search.index import Document

    weights = [1 / (rank + 1) ** 0.9 for rank in range(len(words))]
    for i in range(n):
        text = " ".join(rng.choices(words, weights, k=WORDS_PER_DOC))
        title = " ".join(rng.choices(words, weights, k=5)).capitalize()
        yield Document(f"https://site{i % 500}.example/page/{i}", title, text + ".", "May 1, 2026")


async def search_latency(path: Path, words: list[str], rng: random.Random) -> list[float]:
    from batchd.tools.web_search.base import SearchQuery
    from batchd.tools.web_search.local import LocalProvider

    provider = LocalProvider(str(path))
    weights = [1 / (rank + 1) ** 0.9 for rank in range(len(words))]
    samples = []
    for _ in range(QUERIES):
        query = " ".join(rng.choices(words, weights, k=rng.randint(2, 4)))
        start = time.perf_counter()
        await provider.search(SearchQuery(query, max_results=5))
        samples.append((time.perf_counter() - start) * 1e3)
    await provider.aclose()
    return samples


async def loop_cost(
    path: Path,
    upstream_url: str | None = None,
    text: str = "kalo mine ruta",
    rounds: int = ROUNDS,
    between: Callable[[], Awaitable[None]] | None = None,
) -> tuple[list[float], list[float]]:
    """Wall times of `rounds` search-and-answer requests through `ToolLoop`, and the time each one's
    upstream calls took (ms). upstream_url: an OpenAI-compatible server's base URL (…/v1); without
    it, a loopback ToolUpstream answering after UPSTREAM_MS. between: awaited after each request
    (what is compared with the loop runs in turn with it, under the same load)."""
    from batchd.backends.openai import OpenAIBackend
    from batchd.tools.loop import ToolLoop
    from batchd.tools.tokens import Tokens
    from batchd.tools.web_search.local import LocalProvider

    upstream = None
    if upstream_url is None:
        upstream = ToolUpstream(latency=UPSTREAM_MS / 1e3).start()
        upstream_url = upstream.url + "/v1"
    inner = OpenAIBackend(upstream_url)
    upstream_ms: list[float] = []

    class Timed:  # the real backend, its calls timed
        kind = inner.kind
        instant = None

        async def create_message(self, params: dict[str, Any], **kw: Any) -> dict[str, Any]:
            start = time.perf_counter()
            try:
                return await inner.create_message(params, **kw)
            finally:
                upstream_ms.append((time.perf_counter() - start) * 1e3)

        async def aclose(self) -> None:
            await inner.aclose()

    loop = ToolLoop(Timed(), provider=LocalProvider(str(path)), fetcher=None, tokens=Tokens(b"b" * 32),
                    max_iterations=10)  # fmt: skip
    params = {
        "model": "m",
        "max_tokens": 64,
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        "messages": [{"role": "user", "content": text}],
    }
    walls, spent = [], []
    try:
        for i in range(rounds + 2):
            before = len(upstream_ms)
            start = time.perf_counter()
            answer = await loop.create_message(params)
            wall = (time.perf_counter() - start) * 1e3
            assert answer["usage"]["server_tool_use"]["web_search_requests"] == 1, answer
            if i >= 2:  # the first two warm the connections and the index's pages
                walls.append(wall)
                spent.append(sum(upstream_ms[before:]))
            if between is not None:
                await between()
    finally:
        await inner.aclose()
        if upstream is not None:
            upstream.stop()
    return walls, spent


def run(n: int) -> list[Row]:
    rng = random.Random(13)
    words = _words(rng)
    with tempfile.TemporaryDirectory(prefix="batchd-bench-search-") as tmp:
        from batchd.tools.web_search import index

        path = Path(tmp) / "index.db"
        start = time.monotonic()
        index.build(corpus(n, rng, words), path)
        built = time.monotonic() - start
        size = path.stat().st_size / 1e6
        log(f"indexed {n:,} documents in {built:.1f} s ({size:.0f} MB)")
        samples = asyncio.run(search_latency(path, words, rng))
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        log(f"search p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        walls, spent = asyncio.run(loop_cost(path))
    added = [w - s for w, s in zip(walls, spent, strict=True)]
    share = sum(added) / sum(walls)
    per_iteration = percentile(added, 0.5) / 2
    rows = [
        Row(
            f"local web search, {n:,}-document index ({size:.0f} MB, built in {built:.0f} s), "
            f"{QUERIES} queries of 2–4 words, 5 results",
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
            "—",
            "—",
            f"p99 ≤ {TARGET_P99_MS:g} ms",
            p99 <= TARGET_P99_MS,
        ),
        Row(
            f"server-tool loop, search-and-answer request (2 model calls, 1 search on the {n:,}-document "
            f"index), openai backend, loopback model answering in {UPSTREAM_MS:g} ms, {ROUNDS} requests",
            f"batchd adds {percentile(added, 0.5):.1f} ms per request (p50; ~{per_iteration:.1f} ms per "
            f"iteration), {share:.1%} of the wall time",
            f"the upstream calls: {percentile(spent, 0.5):.0f} ms per request (p50)",
            f"{share:.3f}",
            f"batchd adds ≤ {TARGET_OVERHEAD:.0%} of the wall time",
            share <= TARGET_OVERHEAD,
        ),
    ]
    return rows


if __name__ == "__main__":
    for row in run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000):
        print(row.markdown())
