"""Retrieve and list latency on an idle server, then while an n-request batch runs at full speed.

    python -m bench.latency 10000

One fresh `batchd serve` (SQLite, zero-latency simulator). The official SDK, one client, calls
sequentially: first CALLS retrieves and CALLS lists (newest first, the default 20) on the idle server
(a few small ended batches exist, so list has rows to render), then creates the big batch and, from
the moment the create answered until the batch ends, alternates retrieve (of the running batch) and
list, up to CALLS of each. p50/p99 are of the wall time of each SDK call on the client.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anthropic
from tests.acceptance.server import ServerProcess

from bench.common import Row, make_requests, ratio

CALLS = 300  # of each kind, idle and under load
TARGET_P99_MS = 20.0
SMALL_BATCHES = 25  # ended batches present before the measurements (list returns 20)
RUN_TIMEOUT = 900.0  # seconds for the big batch to end


def log(message: str) -> None:
    print(f"[latency] {message}", file=sys.stderr, flush=True)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1e3


def wait_ended(client: anthropic.Anthropic, batch_id: str) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT
    while client.messages.batches.retrieve(batch_id).processing_status != "ended":
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch {batch_id} did not end within {RUN_TIMEOUT:.0f} s")
        time.sleep(0.05)


def measure(client: anthropic.Anthropic, n: int) -> dict[str, list[float]]:
    small = [client.messages.batches.create(requests=make_requests(2)) for _ in range(SMALL_BATCHES)]  # type: ignore[arg-type]
    for b in small:
        wait_ended(client, b.id)
    idle_id = small[0].id
    out: dict[str, list[float]] = {"retrieve idle": [], "list idle": []}
    for _ in range(CALLS):
        out["retrieve idle"].append(timed(lambda: client.messages.batches.retrieve(idle_id)))
        out["list idle"].append(timed(lambda: client.messages.batches.list()))

    batch = client.messages.batches.create(requests=make_requests(n))  # type: ignore[arg-type]
    retrieve: list[float] = []
    listing: list[float] = []
    ended = False
    started = time.perf_counter()
    while len(retrieve) < CALLS:
        t0 = time.perf_counter()
        status = client.messages.batches.retrieve(batch.id).processing_status
        retrieve.append((time.perf_counter() - t0) * 1e3)
        if status == "ended":
            ended = True
            break
        listing.append(timed(lambda: client.messages.batches.list()))
    window = time.perf_counter() - started
    log(f"{len(retrieve)} retrieves and {len(listing)} lists in {window:.1f} s of the run (ended: {ended})")
    wait_ended(client, batch.id)
    out["retrieve under load"], out["list under load"] = retrieve, listing
    return out


def run(n: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="batchd-bench-") as tmp:
        srv = ServerProcess(Path(tmp) / "batchd", {"BATCHD_LOG_LEVEL": "warning"}).start()
        try:
            with anthropic.Anthropic(
                base_url=srv.base_url, api_key="bench", max_retries=0, timeout=600
            ) as client:
                samples = measure(client, n)
        finally:
            srv.stop()
    rows = []
    for op in ("retrieve", "list"):
        idle, load = samples[f"{op} idle"], samples[f"{op} under load"]
        if len(load) < 20:
            rows.append(
                Row(
                    scenario=f"{op} while {n:,} requests run",
                    batchd=f"only {len(load)} calls fitted in the run: use a larger n",
                    compared="—",
                    ratio="—",
                    target=f"p99 ≤ {TARGET_P99_MS:.0f} ms",
                    met=None,
                )
            )
            continue
        p50, p99 = percentile(load, 0.5), percentile(load, 0.99)
        i50, i99 = percentile(idle, 0.5), percentile(idle, 0.99)
        what = "GET /v1/messages/batches/{id}" if op == "retrieve" else "GET /v1/messages/batches (20 rows)"
        idle_s = f"idle p50 {i50:.1f} p99 {i99:.1f}"
        log(f"{op} ms: {idle_s}; loaded p50 {p50:.1f} p99 {p99:.1f} max {max(load):.1f}")
        rows.append(
            Row(
                scenario=f"{op} ({what}) while {n:,} requests run, SDK, sequential",
                batchd=f"p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(load)} calls)",
                compared=f"idle server: p50 {i50:.1f} ms, p99 {i99:.1f} ms ({len(idle)} calls)",
                ratio=ratio(p99, i99),
                target=f"p99 ≤ {TARGET_P99_MS:.0f} ms",
                met=p99 <= TARGET_P99_MS,
            )
        )
    return rows


if __name__ == "__main__":
    from bench.common import table

    print(table(run(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)))
