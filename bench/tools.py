"""Server tools against a real llama.cpp: what batchd adds to a search-and-answer request.

    python -m bench.tools 400

The tiny scripted search model (tests/acceptance/tiny_gguf.py, `search=True`) runs in a standalone
llama.cpp server (the xllamacpp wheel, its own process, 8 slots): asked with the `web_search`
tool it calls it, and once it has the result it answers quoting the result in a `<cite>` tag. The
local index holds 2,000 synthetic pages and the page the model quotes. In one run:

1. **Per request** (30, one after the other): `ToolLoop` around the real `openai` backend, in
   process (bench/search.py's `loop_cost`), its two llama.cpp calls timed at the backend; the
   wall time minus those calls is the loop's own cost (request rewriting, the search, the blocks,
   the citations, the tokens). After each, a raw client makes the same two calls directly (the
   two bodies the loop sent, recorded and replayed), so both see the same load on a shared machine.
2. **A batch** of n requests through `batchd serve` (SQLite, an `openai` route to llama.cpp,
   concurrency 8), timed from the create call to `ended_at` plus the results download, next to the
   raw client making the same 2n calls at the same concurrency (aiohttp, as batchd's backends; the
   recorded bodies with each request's question), turns alternating raw, batchd, raw; the raw
   figure is the mean of its two turns.

The tiny model answers a call in about 13 ms, far faster than any useful model, so the share
batchd adds here is an upper bound: the same milliseconds against a real model's call are a smaller
part of its wall time.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anthropic
import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.acceptance import tiny_gguf  # noqa: E402
from tests.acceptance.server import ServerProcess  # noqa: E402

from bench import llamacpp, search  # noqa: E402
from bench.common import Row  # noqa: E402

SLOTS = 8
DOCUMENTS = 2_000
ROUNDS = 30
MAX_TOKENS = 64
TARGET_OVERHEAD = 0.05  # of the request's wall time
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search"}
SHANNON = {
    "url": "https://science.example/shannon",
    "title": "Claude Shannon",
    "text": "Claude Shannon was born on April 30, 1916, in Petoskey, Michigan. He founded information "
    "theory.",
}


def log(message: str) -> None:
    print(f"[tools] {message}", file=sys.stderr, flush=True)


def build_index(folder: Path) -> Path:
    import random

    from batchd.tools.web_search import index
    from batchd.tools.web_search.index import Document

    rng = random.Random(13)
    words = search._words(rng)
    shannon = Document(SHANNON["url"], SHANNON["title"], SHANNON["text"])
    documents = [*search.corpus(DOCUMENTS, rng, words), shannon]
    path = folder / "index.db"
    index.build(iter(documents), path)
    return path


def question(i: int) -> str:
    return f"When was Claude Shannon born? (request {i})"


async def _record(index: Path, base_url: str) -> list[bytes]:
    """The two chat-completions bodies batchd's loop sends llama.cpp for question(0), as sent."""
    from batchd.backends.openai import OpenAIBackend
    from batchd.backends.openai import request as openai_request
    from batchd.tools.loop import ToolLoop
    from batchd.tools.tokens import Tokens
    from batchd.tools.web_search.local import LocalProvider

    inner = OpenAIBackend(base_url + "/v1")
    bodies: list[bytes] = []

    class Recorded:  # the real backend, each body it sends kept
        kind = inner.kind
        instant = None

        async def create_message(self, params: dict[str, Any], **kw: Any) -> dict[str, Any]:
            body = openai_request.to_chat(params, model=params["model"], reasoning=inner.reasoning)
            bodies.append(orjson.dumps(body))
            return await inner.create_message(params, **kw)

    loop = ToolLoop(Recorded(), provider=LocalProvider(str(index)), fetcher=None, tokens=Tokens(b"b" * 32),
                    max_iterations=10)  # fmt: skip
    params = {"model": "tiny", "max_tokens": MAX_TOKENS, "tools": [WEB_SEARCH],
              "messages": [{"role": "user", "content": question(0)}]}  # fmt: skip
    try:
        answer = await loop.create_message(params)
    finally:
        await inner.aclose()
    assert len(bodies) == 2 and answer["usage"]["server_tool_use"]["web_search_requests"] == 1, answer
    return bodies


class Raw:
    """A raw client making the same two llama.cpp calls per request directly (aiohttp, as batchd's
    backends): the bodies batchd's loop sent for question(0), recorded, with request i's question."""

    def __init__(self, base_url: str, bodies: list[bytes]) -> None:
        self.url = base_url + "/v1/chat/completions"
        self.first, self.second = (b.replace(question(0).encode(), b"%QUESTION%") for b in bodies)
        self.times: list[float] = []  # ms per request
        self.answered = 0  # answers quoting the result

    async def call(self, session: Any, body: bytes, i: int) -> dict[str, Any]:
        data = body.replace(b"%QUESTION%", question(i).encode())
        headers = {"content-type": "application/json"}
        async with session.post(self.url, data=data, headers=headers) as response:
            assert response.status == 200, await response.text()
            message: dict[str, Any] = (await response.json())["choices"][0]["message"]
            return message

    async def request(self, session: Any, i: int) -> None:
        start = time.perf_counter()
        assert (await self.call(session, self.first, i))["tool_calls"]
        answer = await self.call(session, self.second, i)
        self.answered += tiny_gguf.QUOTE in (answer["content"] or "")
        self.times.append((time.perf_counter() - start) * 1e3)

    async def batch(self, n: int, concurrency: int) -> float:
        """n requests at `concurrency`: seconds."""
        import aiohttp

        queue = iter(range(n))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

            async def worker() -> None:
                for i in queue:  # the workers share one iterator: each request is sent once
                    await self.request(session, i)

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - start

    async def paired(self, index: Path, base_url: str) -> tuple[list[float], list[float]]:
        """ROUNDS requests one at a time through the loop, each followed by the raw client's same
        request (question(0), as `loop_cost` asks): the loop's walls and its upstream calls (ms)."""
        import aiohttp

        async with aiohttp.ClientSession() as session:
            return await search.loop_cost(
                index, base_url + "/v1", question(0), ROUNDS, lambda: self.request(session, 0)
            )


def run_raw(base_url: str, bodies: list[bytes], n: int, concurrency: int) -> dict[str, Any]:
    raw = Raw(base_url, bodies)
    seconds = asyncio.run(raw.batch(n, concurrency))
    return {"seconds": seconds, "succeeded": raw.answered}


def run_batchd(base_url: str, index: Path, texts: list[str]) -> dict[str, Any]:
    requests = [
        {
            "custom_id": f"req-{i}",
            "params": {
                "model": "tiny",
                "max_tokens": MAX_TOKENS,
                "tools": [WEB_SEARCH],
                "messages": [{"role": "user", "content": text}],
            },
        }
        for i, text in enumerate(texts)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "batchd.toml"
        config.write_text(
            f'[web_search]\nindex = "{index}"\n'
            f'[[routes]]\nmodel = "*"\nbackend = "openai"\nbase_url = "{base_url}/v1"\n'
            f"concurrency = {SLOTS}\n"
        )
        proc = ServerProcess(Path(tmp) / "data", {"BATCHD_CONFIG": str(config)}).start()
        try:
            client = anthropic.Anthropic(base_url=proc.base_url, api_key="bench", max_retries=0, timeout=600)
            started = time.time()
            batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
            while (batch := client.messages.batches.retrieve(batch.id)).processing_status != "ended":
                time.sleep(llamacpp.POLL)
            assert batch.ended_at is not None
            download = time.perf_counter()
            with client.messages.batches.with_streaming_response.results(batch.id) as stream:
                lines = [orjson.loads(line) for line in stream.iter_lines() if line]
            seconds = batch.ended_at.timestamp() - started + time.perf_counter() - download
            client.close()
        finally:
            proc.stop()
    ok = sum(
        1
        for line in lines
        if line["result"]["type"] == "succeeded"
        and line["result"]["message"]["usage"]["server_tool_use"]["web_search_requests"] == 1
        and any(b.get("citations") for b in line["result"]["message"]["content"])
    )
    return {"seconds": seconds, "succeeded": ok}


def run(n: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="batchd-bench-tools-") as tmp:
        folder = Path(tmp)
        gguf = tiny_gguf.build(folder / "search.gguf", search=True)
        index = build_index(folder)
        with llamacpp.llama_server(gguf, parallel=SLOTS, ctx=SLOTS * 1024, cache_ram=0) as base_url:
            bodies = asyncio.run(_record(index, base_url))
            run_raw(base_url, bodies, 2 * SLOTS, SLOTS)  # warm-up
            # 1. one request at a time: the loop's own cost next to its llama.cpp calls
            raw_one = Raw(base_url, bodies)
            walls, spent = asyncio.run(raw_one.paired(index, base_url))
            raw_times = raw_one.times[2:]  # as the loop's, the first two warm up
            # 2. a batch: raw, batchd, raw
            texts = [question(i) for i in range(n)]
            before = run_raw(base_url, bodies, n, SLOTS)
            ours = run_batchd(base_url, index, texts)
            after = run_raw(base_url, bodies, n, SLOTS)
    added = [w - s for w, s in zip(walls, spent, strict=True)]
    share = sum(added) / sum(walls)
    loop_p50, calls_p50 = search.percentile(added, 0.5), search.percentile(spent, 0.5)
    raw_p50 = search.percentile(raw_times, 0.5)
    log(f"loop adds {loop_p50:.2f} ms per request, calls {calls_p50:.2f} ms; raw {raw_p50:.2f} ms")
    raw_seconds = (before["seconds"] + after["seconds"]) / 2
    speed = raw_seconds / ours["seconds"]  # batchd's rate over the raw client's
    log(f"batch: batchd {ours['seconds']:.2f} s, raw {before['seconds']:.2f} s / {after['seconds']:.2f} s")
    ok = ours["succeeded"] == n and before["succeeded"] == after["succeeded"] == n
    label = (
        f"server tools on llama.cpp: search-and-answer (2 calls of the tiny search model, 1 search on a "
        f"{DOCUMENTS + 1:,}-document local index)"
    )
    return [
        Row(
            f"{label}, {ROUNDS} requests one at a time, the loop in process",
            f"the loop adds {loop_p50:.1f} ms per request (p50; ~{loop_p50 / 2:.1f} ms per iteration), "
            f"{share:.1%} of the wall time; its 2 llama.cpp calls {calls_p50:.1f} ms, the request "
            f"{search.percentile(walls, 0.5):.1f} ms (p50)",
            f"raw client, the same 2 calls: {raw_p50:.1f} ms per request (p50)",
            f"{share:.3f}",
            f"batchd adds ≤ {TARGET_OVERHEAD:.0%} of the wall time",
            share <= TARGET_OVERHEAD and raw_one.answered == ROUNDS + 2,
        ),
        Row(
            f"{label}, a batch of {n:,} through batchd serve, {SLOTS} slots",
            f"{n / ours['seconds']:.0f} req/s ({ours['seconds']:.2f} s, {int(ours['succeeded'])} cited)",
            f"raw client, the same {2 * n:,} calls: {n / raw_seconds:.0f} req/s "
            f"({before['seconds']:.2f} s, {after['seconds']:.2f} s)",
            f"{speed:.2f}×",
            f"≥ {1 - TARGET_OVERHEAD:.2f}× raw client (batchd adds ≤ {TARGET_OVERHEAD:.0%})",
            speed >= 1 - TARGET_OVERHEAD and ok,
        ),
    ]


if __name__ == "__main__":
    for row in run(int(sys.argv[1]) if len(sys.argv) > 1 else 400):
        print(row.markdown())
