"""Time to first token of a streamed `POST /v1/messages` through batchd, next to llama.cpp's own.

    python -m bench --only stream              # in the bench run
    python -m bench.stream --n 200             # alone

A standalone llama.cpp server (the xllamacpp wheel, the tiny test model, 2 slots, its own process)
and a `batchd serve` (SQLite) whose `openai` route streams from it. N distinct short prompts
(max_tokens 16), one call at a time, each sent twice in turn — straight to llama.cpp's
`/v1/chat/completions` with `stream: true`, and to batchd's `/v1/messages` with `stream: true` — in
alternating order, so both see the same machine from one moment to the next. Both clients are the
same raw httpx stream (no SDK: its parsing would be counted as the server's), timed from the
request's send to the first byte of the first content event: llama.cpp's first chunk with text,
reasoning or a tool call, batchd's first `content_block_delta`. The first 10 pairs warm up and are
not counted.

The target is the issue's: batchd's p50 ≤ 1.1× llama.cpp's p50 + 5 ms. The tiny model answers
in a single token, so a time to first token here is nearly all HTTP and prompt processing: the
overhead batchd adds (auth, validation, routing, the translation) is at its largest relative to it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.acceptance.server import ServerProcess  # noqa: E402

from bench import llamacpp  # noqa: E402
from bench.common import Row, table  # noqa: E402

SLOTS = 2
MAX_TOKENS = 16
WARMUP = 10
HEADERS = {"x-api-key": "bench", "anthropic-version": "2023-06-01"}


def first_llama(client: httpx.Client, url: str, text: str) -> float:
    """Seconds from send to llama.cpp's first chunk with content, reading the stream to its end."""
    body = {
        "model": "tiny",
        "max_tokens": MAX_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": text}],
        "chat_template_kwargs": {"enable_thinking": False},
    }
    first = None
    started = time.perf_counter()
    with client.stream("POST", url + "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if first is None and line.startswith("data: {"):
                delta = (json.loads(line[6:]).get("choices") or [{}])[0].get("delta") or {}
                if delta.get("content") or delta.get("reasoning_content") or delta.get("tool_calls"):
                    first = time.perf_counter() - started
    if first is None:
        raise RuntimeError("llama.cpp streamed no content")
    return first


def first_batchd(client: httpx.Client, url: str, text: str) -> float:
    """Seconds from send to batchd's first `content_block_delta`, reading the stream to its end."""
    body = {
        "model": "tiny",
        "max_tokens": MAX_TOKENS,
        "stream": True,
        "messages": [{"role": "user", "content": text}],
    }
    first = None
    started = time.perf_counter()
    with client.stream("POST", url + "/v1/messages", json=body, headers=HEADERS) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if first is None and line == "event: content_block_delta":
                first = time.perf_counter() - started
    if first is None:
        raise RuntimeError("batchd streamed no content_block_delta")
    return first


def measure(llama_url: str, batchd_url: str, n: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"llama": [], "batchd": []}
    with httpx.Client(timeout=60) as client:
        for i in range(n + WARMUP):
            text = f"Request {i}: what is {i} plus {i % 97}?"
            pair = [("llama", first_llama, llama_url), ("batchd", first_batchd, batchd_url)]
            if i % 2:
                pair.reverse()
            for name, call, url in pair:
                try:
                    seconds = call(client, url, text)
                except httpx.RemoteProtocolError:  # a kept-alive connection llama.cpp had closed
                    seconds = call(client, url, text)
                if i >= WARMUP:
                    times[name].append(seconds)
    return times


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def rows(times: dict[str, list[float]]) -> list[Row]:
    ms = {k: [v * 1000 for v in vs] for k, vs in times.items()}
    llama50, batchd50 = statistics.median(ms["llama"]), statistics.median(ms["batchd"])
    llama90, batchd90 = quantile(ms["llama"], 0.9), quantile(ms["batchd"], 0.9)
    bound = 1.1 * llama50 + 5
    n = len(ms["batchd"])
    return [
        Row(
            scenario=f"time to first token, stream: true, llama.cpp (tiny model, {SLOTS} slots), "
            f"{n} calls one at a time",
            batchd=f"/v1/messages via the openai route: p50 {batchd50:.1f} ms, p90 {batchd90:.1f} ms "
            f"(adds {batchd50 - llama50:+.1f} ms at p50)",
            compared=f"llama.cpp's own /v1/chat/completions stream: p50 {llama50:.1f} ms, "
            f"p90 {llama90:.1f} ms",
            ratio=f"{batchd50 / llama50:.2f}×",
            target=f"p50 ≤ 1.1× llama.cpp + 5 ms (here {bound:.1f} ms)",
            met=batchd50 <= bound,
        )
    ]


def run(n: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="batchd-bench-stream-") as tmp:
        folder = Path(tmp)
        gguf = llamacpp.build_model(folder)
        with llamacpp.llama_server(gguf, parallel=SLOTS, ctx=SLOTS * 1024) as llama_url:
            config = folder / "batchd.toml"
            config.write_text(
                f'[[routes]]\nmodel = "*"\nbackend = "openai"\nbase_url = "{llama_url}/v1"\n'
                f"concurrency = {SLOTS}\n"
            )
            proc = ServerProcess(folder / "data", {"BATCHD_CONFIG": str(config)}).start()
            try:
                times = measure(llama_url, proc.base_url, n)
            finally:
                proc.stop()
    return rows(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    print(table(run(args.n)))


if __name__ == "__main__":
    main()
