"""Create and end to end on SQLite: the same official-SDK create call sent to `batchd serve` and to
the limit (bench/limit_server.py: a minimal loopback server that only parses the body with orjson and
bulk-inserts it into SQLite in one transaction), then batchd runs the batch on the zero-latency
simulator.

    python -m bench.create_e2e 10000

Create is the SDK call's wall time, client serialisation included on both sides, after a one-request
warm-up call so that neither side pays the SDK's first-call imports. Small batches take the best of
three rounds (limit, then batchd, each a fresh process), large ones one round. Peak RSS is the
batchd process's VmHWM after the create (its idle figure is read before); it is judged against the
body from 50,000 requests on, below which the idle process outweighs the body. End to end is counted
from the create's answer to the batch's own `ended_at` (server clock, same machine), so the polling
interval does not blur it; the server's CPU time over that span gives the cores it kept busy.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
from tests.acceptance.server import ServerProcess, free_port

from bench.common import ROOT, Row, cpu_seconds, make_requests, ratio, rss, vm_hwm

SMALL = 20_000  # at most this many requests: best of ROUNDS create rounds
ROUNDS = 3
RSS_JUDGED_FROM = 50_000  # below this the idle process (~50 MB) and fixed caches outweigh the body
RUN_TIMEOUT = 900.0  # seconds for the batch to end


@dataclass
class Create:
    seconds: float
    body: int  # bytes the SDK sent
    peak_rss: int  # bytes
    idle_rss: int = 0


def _client(base_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key="bench", max_retries=0, timeout=600)


def limit_create(requests: list[dict[str, Any]], workdir: Path) -> Create:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "limit_server.py"), str(port), str(workdir / "limit.db")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # ready
        with _client(f"http://127.0.0.1:{port}") as client:
            # The first SDK call in a process pays its lazy imports: not the limit's to carry.
            client.messages.batches.create(requests=requests[:1])  # type: ignore[arg-type]
            proc.stdout.readline()
            start = time.perf_counter()
            client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
            seconds = time.perf_counter() - start
        body = int(proc.stdout.readline().split()[1])
        return Create(seconds, body, vm_hwm(proc.pid))
    finally:
        proc.terminate()
        proc.wait()


def log(message: str) -> None:
    print(f"[create/e2e] {message}", file=sys.stderr, flush=True)


def run(n: int, parts: Sequence[str] = ("create", "e2e")) -> list[Row]:
    requests = make_requests(n)
    rounds = ROUNDS if "create" in parts and n <= SMALL else 1
    limits: list[Create] = []
    creates: list[Create] = []
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="batchd-bench-") as tmp:
        for round_ in range(rounds):
            if "create" in parts:
                limits.append(limit_create(requests, Path(tmp) / f"limit-{round_}"))
                log(f"round {round_ + 1}: limit {limits[-1].seconds:.2f} s")
            srv = ServerProcess(Path(tmp) / f"batchd-{round_}", {"BATCHD_LOG_LEVEL": "warning"}).start()
            try:
                pid = srv.app_pid
                idle = rss(pid)
                with _client(srv.base_url) as client:
                    started = time.time()
                    start = time.perf_counter()
                    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
                    seconds = time.perf_counter() - start
                    answered, cpu = time.time(), cpu_seconds(pid)
                    creates.append(Create(seconds, limits[-1].body if limits else 0, vm_hwm(pid), idle))
                    log(f"round {round_ + 1}: batchd {seconds:.2f} s")
                    if "e2e" in parts and round_ == rounds - 1:
                        rows.append(_e2e(client, batch.id, n, (started, answered, cpu), pid))
            finally:
                srv.stop()
    if "create" in parts:
        rows[:0] = _create_rows(n, limits, creates, rounds)
    return rows


def _e2e(client: anthropic.Anthropic, batch_id: str, n: int, at: tuple[float, float, float], pid: int) -> Row:
    started, answered, cpu = at  # wall clock at the create call and at its answer; server CPU then
    deadline = time.monotonic() + RUN_TIMEOUT
    while (batch := client.messages.batches.retrieve(batch_id)).processing_status != "ended":
        if time.monotonic() > deadline:
            raise TimeoutError(f"the batch did not end within {RUN_TIMEOUT:.0f} s: {batch.request_counts}")
        time.sleep(0.2)
    assert batch.ended_at is not None
    if batch.request_counts.succeeded != n:
        raise RuntimeError(f"expected {n} succeeded, got {batch.request_counts}")
    busy = cpu_seconds(pid) - cpu  # a few idle polls after the end add next to nothing
    ended = batch.ended_at.timestamp()
    rps = n / (ended - answered)
    log(f"end to end {rps:,.0f} req/s")
    return Row(
        scenario=f"end to end, zero-latency simulator, {n:,} requests",
        batchd=(
            f"{rps:,.0f} req/s ({n / (ended - started):,.0f} incl. create; server used "
            f"{busy / (ended - answered):.2f} cores, peak RSS {vm_hwm(pid) / 1e6:.0f} MB)"
        ),
        compared="—",
        ratio="—",
        target="≥ 10,000 req/s",
        met=rps >= 10_000,
    )


def _create_rows(n: int, limits: list[Create], creates: list[Create], rounds: int) -> list[Row]:
    limit = min(limits, key=lambda c: c.seconds)
    best = min(creates, key=lambda c: c.seconds)
    mb = 1e6
    body = limit.body
    how = f" (best of {rounds})" if rounds > 1 else ""
    peak = max(c.peak_rss for c in creates)  # the worst round
    idle = min(c.idle_rss for c in creates)
    limit_peak = max(c.peak_rss for c in limits)
    rss_target = "≤ 2× body"
    rss_met: bool | None = peak <= 2 * body
    if n < RSS_JUDGED_FROM:
        rss_target, rss_met = f"≤ 2× body (judged from {RSS_JUDGED_FROM:,} requests)", None
    return [
        Row(
            scenario=f"create {n:,} requests ({body / mb:.1f} MB) via the SDK",
            batchd=f"{best.seconds:.2f} s{how}",
            compared=f"limit {limit.seconds:.2f} s{how}",
            ratio=ratio(best.seconds, limit.seconds),
            target="≤ 1.5× limit",
            met=best.seconds <= 1.5 * limit.seconds,
        ),
        Row(
            scenario=f"create {n:,} requests: server peak RSS",
            batchd=(
                f"{peak / mb:.0f} MB = {peak / body:.1f}× body (idle {idle / mb:.0f} MB, "
                f"growth {(peak - idle) / body:.1f}× body)"
            ),
            compared=f"limit server {limit_peak / mb:.0f} MB",
            ratio=ratio(peak, limit_peak),
            target=rss_target,
            met=rss_met,
        ),
    ]


if __name__ == "__main__":
    from bench.common import table

    print(table(run(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)))
