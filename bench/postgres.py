"""Scale-out on PostgreSQL: 1, 2 and 4 `batchd worker` processes against one upstream that saturates,
and how the cost per request grows from a batch of N/10 requests to one of N.

    python -m bench.postgres 10000
    BATCHD_BENCH_POSTGRES_URL=postgresql://user@host/postgres python -m bench.postgres 10000

Each run gets a fresh database, one `batchd serve` holding the API with its own engine at concurrency
1 (so the workers do the work) and the workers, each with the simulated upstream. Worker runs (N/10
requests): the upstream answers in 100 ms and takes at most 64 calls at once (`fleet_max_running`,
the cap a deployment sets for an upstream with that many slots); each worker sends up to 32, so the
ideal is min(workers × 32, 64) / 0.1 s: 320, 640 and 640 req/s. It doubles from 1 to 2 workers,
then the upstream is saturated and a 4-worker fleet should hold its rate. Throughput is counted from
the create's answer to the batch's `ended_at`. Cost runs: 2 workers, an upstream answering in 20 ms
with 64 calls per worker and no cap (so batchd is the bottleneck), timed from the create call to the
last byte of the results.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anthropic
from tests.acceptance.server import ServerProcess, WorkerProcess

from bench.common import Row, make_requests, missing, ratio

ADMIN_URL = os.environ.get("BATCHD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
WORKERS = (1, 2, 4)
LATENCY = 0.1  # seconds per upstream call in the worker runs
CONCURRENCY = 32  # calls in flight per worker in the worker runs
FLEET = 64  # calls the upstream takes at once, across the fleet
COST_WORKERS = 2
COST_LATENCY = "20ms"
COST_CONCURRENCY = 64
RUN_TIMEOUT = 900.0  # seconds for one batch to end


def log(message: str) -> None:
    print(f"[postgres] {message}", file=sys.stderr, flush=True)


def database_url(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def _admin(sql: str) -> Any:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def server_version() -> str:
    return str(asyncio.run(_admin("SHOW server_version")))


def run_once(n: int, workers: int, env: dict[str, str], concurrency: int, workdir: Path) -> dict[str, float]:
    """One batch of `n` requests through a fresh database; seconds of each phase."""
    name = f"batchd_bench_{os.getpid()}_{workers}_{n}"
    asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    asyncio.run(_admin(f"CREATE DATABASE {name}"))
    common = {"BATCHD_DATABASE_URL": database_url(name), "BATCHD_LOG_LEVEL": "warning", **env}
    run_dir = workdir / f"{workers}-{n}"
    api = ServerProcess(run_dir / "api", {**common, "BATCHD_CONCURRENCY": "1", "BATCHD_CLAIM_CHUNK": "1"})
    procs: list[ServerProcess | WorkerProcess] = [api]
    try:
        api.start()
        for i in range(workers):
            worker_env = {**common, "BATCHD_CONCURRENCY": str(concurrency)}
            procs.append(WorkerProcess(run_dir / f"w{i}", worker_env).start())
        requests = make_requests(n)
        client = anthropic.Anthropic(base_url=api.base_url, api_key="bench", max_retries=0, timeout=600)
        with client:
            start = time.perf_counter()
            batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
            answered_wall, created = time.time(), time.perf_counter()
            del requests
            deadline = time.monotonic() + RUN_TIMEOUT
            while (batch := client.messages.batches.retrieve(batch.id)).processing_status != "ended":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{workers} workers: the batch did not end in {RUN_TIMEOUT:.0f} s")
                time.sleep(0.1)
            if batch.request_counts.succeeded != n or batch.ended_at is None:
                raise RuntimeError(f"expected {n} succeeded, got {batch.request_counts}")
            processing = batch.ended_at.timestamp() - answered_wall
            ended = time.perf_counter()
            size = 0
            with client.messages.batches.with_streaming_response.results(batch.id) as response:
                for chunk in response.iter_bytes():
                    size += len(chunk)
            done = time.perf_counter()
        return {
            "create": created - start,
            "processing": processing,
            "results": done - ended,
            "total": done - start,
            "bytes": size,
        }
    finally:
        for proc in procs:
            proc.stop()
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def ideal(workers: int) -> float:
    """Requests a second if batchd cost nothing: the upstream's answers, as far as the workers use it."""
    return min(workers * CONCURRENCY, FLEET) / LATENCY


def _worker_row(workers: int, n: int, rps: float, previous: tuple[int, float] | None) -> Row:
    saturated = workers * CONCURRENCY >= FLEET
    if previous is None:
        target, met = "baseline for the scaling", None
    else:
        before, before_rps = previous
        expected = ideal(workers) / ideal(before)  # what the upstream allows: 2× below its cap, 1× at it
        if expected > 1:
            target = f"scales: ≥ {0.8 * expected:.1f}× {before} worker{'s' if before > 1 else ''}"
            met = rps >= 0.8 * expected * before_rps
        else:
            target = f"upstream saturated: holds ≥ 0.9× {before} workers"
            met = rps >= 0.9 * before_rps
        target += f" ({before_rps:,.0f} req/s)"
    return Row(
        scenario=(
            f"PostgreSQL, {workers} worker{'s' if workers > 1 else ''}, {n:,} requests; "
            f"upstream {LATENCY * 1000:g} ms × {FLEET} slots, {CONCURRENCY} calls per worker"
        ),
        batchd=f"{rps:,.0f} req/s",
        compared=f"ideal {ideal(workers):,.0f} req/s" + (" (upstream's cap)" if saturated else ""),
        ratio=ratio(rps, ideal(workers)),
        target=target,
        met=met,
    )


def run(n: int) -> list[Row]:
    try:
        version = server_version()
    except Exception as exc:
        return [missing("PostgreSQL", f"not run: no PostgreSQL at {ADMIN_URL} ({type(exc).__name__})")]
    log(f"PostgreSQL {version}")
    rows: list[Row] = []
    per_run = max(1_000, n // 10)
    with tempfile.TemporaryDirectory(prefix="batchd-bench-pg-") as tmp:
        workdir = Path(tmp)
        env = {"BATCHD_SIM_LATENCY": f"{LATENCY * 1000:g}ms", "BATCHD_FLEET_MAX_RUNNING": str(FLEET)}
        previous: tuple[int, float] | None = None  # (workers, req/s) of the run before
        for workers in WORKERS:
            r = run_once(per_run, workers, env, CONCURRENCY, workdir)
            rps = per_run / r["processing"]
            log(f"{workers} workers: {rps:,.0f} req/s (ideal {ideal(workers):,.0f})")
            rows.append(_worker_row(workers, per_run, rps, previous))
            previous = (workers, rps)
        env = {"BATCHD_SIM_LATENCY": COST_LATENCY}
        costs: dict[int, float] = {}
        for size in sorted({max(1, n // 10), n}):
            r = run_once(size, COST_WORKERS, env, COST_CONCURRENCY, workdir)
            costs[size] = r["total"] / size
            log(f"{size:,} requests: {costs[size] * 1e6:,.0f} µs per request")
        if len(costs) < 2:
            return rows
        (small, c_small), (large, c_large) = costs.items()
        rows.append(
            Row(
                scenario=(
                    f"PostgreSQL, cost per request at {large:,} vs {small:,} requests "
                    f"({COST_WORKERS} workers, create to last result byte)"
                ),
                batchd=f"{c_large * 1e6:,.0f} µs/request ({1 / c_large:,.0f} req/s)",
                compared=f"{small:,}: {c_small * 1e6:,.0f} µs/request ({1 / c_small:,.0f} req/s)",
                ratio=ratio(c_large, c_small),
                target="—",
                met=None,
            )
        )
    return rows


if __name__ == "__main__":
    from bench.common import table

    print(table(run(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)))
