"""End to end against a real llama.cpp server: batchd next to a raw client and a peer, in one run.

    python -m bench.llamacpp --n 2000          # quick
    python -m bench.llamacpp                   # 10,000 requests

A standalone llama.cpp server (the xllamacpp wheel, the tiny test model, 16 slots) runs in its own
process; three clients take turns, each sending the same N chat requests (distinct short prompts,
max_tokens 8) at concurrency 16, timed from submit to all results available:

- the limit: a minimal asyncio client posting chat completions, once on httpx and once on aiohttp
  (the library batchd's backends use, backends/http.py); the faster of the two is the limit;
- batchd: one Anthropic batch through the official `anthropic` SDK to `batchd serve` (SQLite), whose
  `openai` route sends them to llama.cpp;
- the peer: LiteLLM (bench/peer_litellm.py), its OpenAI batch JSONL run against a `hosted_vllm`
  deployment on the same server (the result names the mode that ran: proxy or router).

Three rounds each run batchd and the aiohttp client back to back, in alternating order; the httpx
client and the peer, far slower, run once. Each turn gets a fresh llama.cpp server with the same
200-request warm-up. The ratio is the median over the rounds of batchd's rate over the faster raw
client's in the same round: this machine's speed drifts by up to a third within minutes (the same
client: 689, 592, 487 req/s in three turns of one run), so turns are compared with their neighbour,
and the median keeps one lucky or unlucky turn from deciding.

batchd's time runs from the create call to the batch's `ended_at` plus the results download; it is
polled every 0.5 s, as a user would rather than as fast as possible, since on this machine every
poll's work is taken from llama.cpp. The downloaded results are parsed once each with a JSON parser,
as the raw client parses its answers (the SDK's `results()` would add a pydantic model per line).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.acceptance.server import ServerProcess  # noqa: E402

from bench.common import Row, table  # noqa: E402

SLOTS = 16  # llama.cpp slots, and every client's concurrency
POLL = 0.5  # seconds between batchd polls
MAX_TOKENS = 8
MODEL = "tiny"
SYSTEM = "Answer in a few words."

_SERVE = """
import sys, time
from batchd.backends.llamacpp import load_server
gguf, parallel, ctx, threads, cache_ram = sys.argv[1], *map(int, sys.argv[2:])
ram = cache_ram if cache_ram >= 0 else None
server = load_server(gguf, parallel=parallel, ctx=ctx, threads=threads, cache_ram_mib=ram)
print(str(server.listening_address).rstrip("/"), flush=True)
sys.stdin.read()  # serve until the parent closes our stdin
"""


@contextlib.contextmanager
def llama_server(
    gguf: Path, *, parallel: int = SLOTS, ctx: int = 1024, threads: int = -1, cache_ram: int = -1
) -> Iterator[str]:
    """A llama.cpp server in its own process (so its threads never share a GIL with a client).

    cache_ram: llama.cpp's host-memory prompt cache in MiB; -1 keeps llama.cpp's default.
    """
    with llama_process(gguf, parallel=parallel, ctx=ctx, threads=threads, cache_ram=cache_ram) as (url, _):
        yield url


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def llama_process(
    gguf: Path, *, parallel: int = SLOTS, ctx: int = 1024, threads: int = -1, cache_ram: int = -1
) -> Iterator[tuple[str, int]]:
    """llama_server, also giving the server's pid."""
    args = [str(gguf), str(parallel), str(ctx), str(threads)]
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE, *args, str(cache_ram)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        if not line.startswith("http"):
            raise RuntimeError(f"llama.cpp did not start (exit {proc.wait()})")
        wait_healthy(line)
        yield line, proc.pid
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def wait_healthy(base_url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base_url + "/health", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"llama.cpp at {base_url} never became healthy")


def build_model(tmp: Path) -> Path:
    from tests.acceptance import tiny_gguf

    return tiny_gguf.build(tmp / "tiny.gguf")


def prompts(n: int) -> list[tuple[str, str]]:
    """(custom_id, user text): distinct short prompts, so no two requests are the same."""
    return [(f"req-{i}", f"Request {i}: what is {i} plus {i % 97}?") for i in range(n)]


# -- the limit: a minimal asyncio client --------------------------------------------------------


async def _raw(
    base_url: str, items: list[tuple[str, str]], concurrency: int, lean: bool
) -> tuple[float, int]:
    ok = 0
    queue = iter(items)
    url = base_url + "/v1/chat/completions"

    def body(text: str) -> dict[str, Any]:
        return {
            "model": MODEL,
            "max_tokens": MAX_TOKENS,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
        }

    if lean:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                nonlocal ok
                for _, text in queue:  # the workers share one iterator: each item is sent once
                    async with session.post(url, json=body(text)) as response:
                        if response.status == 200 and (await response.json())["choices"]:
                            ok += 1

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - started, ok

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=600) as client:

        async def worker() -> None:
            nonlocal ok
            for _, text in queue:  # the workers share one iterator: each item is sent once
                response = await client.post(url, json=body(text))
                if response.status_code == 200 and response.json()["choices"]:
                    ok += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, ok


def run_raw(
    base_url: str, items: list[tuple[str, str]], concurrency: int = SLOTS, lean: bool = False
) -> dict[str, float]:
    """lean: the same client on aiohttp (as batchd's backends) instead of httpx."""
    seconds, ok = asyncio.run(_raw(base_url, items, concurrency, lean))
    return {"seconds": seconds, "succeeded": ok}


# -- batchd -------------------------------------------------------------------------------------


def run_batchd(
    base_url: str,
    items: list[tuple[str, str]],
    concurrency: int = SLOTS,
    env: dict[str, str] | None = None,
    profile: Path | None = None,
) -> dict[str, float]:
    """One Anthropic batch through a fresh `batchd serve` whose `openai` route goes to `base_url`.

    profile: record the server with py-spy into this SVG while the batch runs.
    """
    requests = [
        {
            "custom_id": cid,
            "params": {
                "model": MODEL,
                "max_tokens": MAX_TOKENS,
                "system": SYSTEM,
                "messages": [{"role": "user", "content": text}],
            },
        }
        for cid, text in items
    ]
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "batchd.toml"
        config.write_text(
            f'[[routes]]\nmodel = "*"\nbackend = "openai"\nbase_url = "{base_url}/v1"\n'
            f"concurrency = {concurrency}\n"
        )
        proc = ServerProcess(Path(tmp) / "data", {"BATCHD_CONFIG": str(config), **(env or {})}).start()
        try:
            client = anthropic.Anthropic(base_url=proc.base_url, api_key="bench", max_retries=0, timeout=600)
            spy = None
            if profile is not None:
                fmt = "raw" if profile.suffix == ".txt" else "flamegraph"
                pid = str(proc.app_pid)
                cmd = ["py-spy", "record", "-p", pid, "-o", str(profile), "-r", "100", "-f", fmt]
                cmd.append("--nonblocking")
                spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
                time.sleep(1)
            started = time.time()
            batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
            # Poll as a user would (each poll is work for the server, taken from llama.cpp on a
            # shared machine); the batch's own ended_at (server clock, same machine) says when the
            # last result was in, so the polling interval does not blur the figure.
            while (batch := client.messages.batches.retrieve(batch.id)).processing_status != "ended":
                time.sleep(POLL)
            assert batch.ended_at is not None
            download = time.perf_counter()
            # The results as the raw client has its answers: each line parsed once with a JSON
            # parser. (The SDK's `results()` would build a pydantic model per line, ~40 µs each
            # here, which is the client library's work rather than batchd's.)
            with client.messages.batches.with_streaming_response.results(batch.id) as stream:
                lines = (orjson.loads(line) for line in stream.iter_lines() if line)
                ok = sum(1 for line in lines if line["result"]["type"] == "succeeded")
            seconds = batch.ended_at.timestamp() - started + time.perf_counter() - download
            client.close()
            if spy is not None:
                spy.send_signal(2)  # SIGINT: py-spy writes its flame graph
                spy.wait(30)
        finally:
            proc.stop()
    return {"seconds": seconds, "succeeded": ok}


# -- the scenario -------------------------------------------------------------------------------


def _rate(n: int, r: dict[str, Any]) -> str:
    return f"{n / r['seconds']:.0f} req/s ({r['seconds']:.1f} s, {int(r['succeeded'])} ok)"


@contextlib.contextmanager
def _fresh_server(gguf: Path, threads: int, n: int) -> Iterator[str]:
    # No host-memory prompt cache: every prompt here is distinct, so it never hits, and it would
    # grow by one saved prompt per request.
    with llama_server(gguf, threads=threads, cache_ram=0) as base_url:
        warm = [(f"warm-{i}", f"Warm-up {i}: what is {i} times two?") for i in range(min(200, n))]
        run_raw(base_url, warm)  # the same warm-up for every client
        yield base_url


def run(n: int, *, peer: bool = True, threads: int = -1, rounds: int = 3) -> list[Row]:
    """Scenario 1: rows for batchd vs the raw client and vs the peer, each measured in this run.

    Each round runs batchd and the aiohttp client back to back (httpx and the peer in the first
    round only), each turn on a fresh llama.cpp server. The ratio is the median over the rounds of
    batchd's rate over the faster raw client's in the same round: the machine's speed drifts by up
    to a third over minutes here (a VM's cores), and a paired comparison cancels most of that where
    the best turn of each would let one lucky turn decide.
    """
    from bench import peer_litellm

    items = prompts(n)
    label = f"llama.cpp e2e, {n:,} requests, {SLOTS} slots, max_tokens {MAX_TOKENS}"
    seen: list[dict[str, dict[str, Any]]] = []  # per round: client -> result
    theirs: dict[str, Any] | None = None
    peer_note = ""
    turns: list[tuple[str, Any]] = [
        ("raw client", lambda url: run_raw(url, items)),
        ("batchd", lambda url: run_batchd(url, items)),
        ("raw client, aiohttp", lambda url: run_raw(url, items, lean=True)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        gguf = build_model(Path(tmp))
        for round_ in range(rounds):
            # Every turn gets a fresh llama.cpp server with the same warm-up, and the order
            # alternates between rounds, so that neither client always runs first.
            # httpx is there for reference (about half the speed of aiohttp): one turn is enough.
            these = turns if round_ == 0 else turns[1:]
            results: dict[str, dict[str, Any]] = {}
            for name, turn in these if round_ % 2 == 0 else these[::-1]:
                with _fresh_server(gguf, threads, n) as base_url:
                    results[name] = turn(base_url)
                print(f"round {round_ + 1} {name}: {_rate(n, results[name])}", file=sys.stderr)
            seen.append(results)
            if peer and not peer_note and theirs is None:  # one turn: the slowest by far
                with _fresh_server(gguf, threads, n) as base_url:
                    try:
                        theirs = peer_litellm.run_batch(
                            base_url, items, concurrency=SLOTS, max_tokens=MAX_TOKENS, system=SYSTEM
                        )
                    except peer_litellm.PeerUnavailable as exc:
                        peer_note = str(exc)
                        print(f"peer: not measured: {exc}", file=sys.stderr)
                if theirs is not None:
                    print(f"peer: {_rate(n, theirs)} {theirs['mode']}", file=sys.stderr)
                    if theirs.get("why"):
                        print(f"peer: proxy mode not run: {theirs['why']}", file=sys.stderr)
    ratios = [min(r[k]["seconds"] for k in r if k != "batchd") / r["batchd"]["seconds"] for r in seen]
    ratio = statistics.median(ratios)
    ours = _median_turn([r["batchd"] for r in seen])
    lean = _median_turn([r["raw client, aiohttp"] for r in seen])
    raw = seen[0]["raw client"]
    ok = all(r["batchd"]["succeeded"] == n for r in seen)
    rounds_text = ", ".join(f"{x:.2f}" for x in ratios)
    rows = [
        Row(
            scenario=label + " vs raw client",
            batchd=f"median turn {_rate(n, ours)}",
            compared=f"raw clients: aiohttp, median turn {_rate(n, lean)}; httpx {_rate(n, raw)}",
            ratio=f"{ratio:.2f}× (median of the rounds' {rounds_text})",
            target="≥ 0.9× raw client",
            met=ratio >= 0.9 and ok,
        )
    ]
    if theirs is not None:
        peer_ratio = theirs["seconds"] / ours["seconds"]
        rows.append(
            Row(
                scenario=label + " vs peer",
                batchd=f"median turn {_rate(n, ours)}",
                compared=f"{theirs['mode']}: {_rate(n, theirs)}",
                ratio=f"{peer_ratio:.2f}×",
                target="ahead of the peer",
                met=peer_ratio > 1.0,
            )
        )
    else:
        rows.append(
            Row(
                scenario=label + " vs peer",
                batchd=f"median turn {_rate(n, ours)}",
                compared=f"LiteLLM not measured: {peer_note}",
                ratio="—",
                target="ahead of the peer",
                met=None,
            )
        )
    return rows


def _median_turn(results: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(results, key=lambda r: r["seconds"])[len(results) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--no-peer", action="store_true", help="skip LiteLLM")
    parser.add_argument("--rounds", type=int, default=3, help="paired rounds; the median ratio counts")
    parser.add_argument("--threads", type=int, default=-1, help="llama.cpp CPU threads (default: all)")
    parser.add_argument("--profile", type=Path, help="only run batchd, under py-spy, into this SVG")
    args = parser.parse_args()
    if args.profile:
        with tempfile.TemporaryDirectory() as tmp, llama_server(build_model(Path(tmp))) as base_url:
            print(run_batchd(base_url, prompts(args.n), profile=args.profile))
        return
    print(table(run(args.n, peer=not args.no_peer, threads=args.threads, rounds=args.rounds)))


if __name__ == "__main__":
    main()
