"""batchd scale-out figure: end-to-end throughput of 1, 2 and 4 `batchd worker` processes on
PostgreSQL, and how the per-request cost grows with batch size.

    python bench/scale.py                                   # workers 1,2,4 on 20k; sizes 10k,100k
    python bench/scale.py --workers 1,2 --n 5000 --sizes 10000   # quick
    BATCHD_BENCH_POSTGRES_URL=postgresql://user@host/postgres python bench/scale.py

Each run gets a fresh database on the server, one `batchd serve` that holds the API and runs its own
engine at concurrency 1 (so the workers do the work), and N `batchd worker` processes, each with the
same simulated upstream (per-request latency, per-process concurrency). A batch is created through
the official SDK, polled until it ends, and its results downloaded: the time from create to the
last byte of results is the end-to-end time. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import anthropic
import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import make_requests  # noqa: E402
from tests.acceptance.server import ServerProcess, WorkerProcess  # noqa: E402

ADMIN_URL = os.environ.get("BATCHD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def database_url(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def run_once(n: int, workers: int, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    name = f"batchd_bench_{os.getpid()}_{workers}_{n}"
    asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    asyncio.run(_admin(f"CREATE DATABASE {name}"))
    common = {
        "BATCHD_DATABASE_URL": database_url(name),
        "BATCHD_SIM_LATENCY": args.latency,
        "BATCHD_LOG_LEVEL": "warning",
    }
    run_dir = workdir / f"{workers}-{n}"
    api = ServerProcess(run_dir / "api", {**common, "BATCHD_CONCURRENCY": "1", "BATCHD_CLAIM_CHUNK": "1"})
    procs: list[ServerProcess | WorkerProcess] = [api]
    try:
        api.start()
        for i in range(workers):
            env = {**common, "BATCHD_CONCURRENCY": str(args.concurrency)}
            procs.append(WorkerProcess(run_dir / f"w{i}", env).start())
        requests = make_requests(n)
        with anthropic.Anthropic(
            base_url=api.base_url, api_key="bench", max_retries=0, timeout=600
        ) as client:
            start = time.perf_counter()
            batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
            created = time.perf_counter()
            del requests
            while client.messages.batches.retrieve(batch.id).processing_status != "ended":
                time.sleep(0.05)
            ended = time.perf_counter()
            size = 0
            with client.messages.batches.with_streaming_response.results(batch.id) as response:
                for chunk in response.iter_bytes():
                    size += len(chunk)
            done = time.perf_counter()
        return {
            "create": created - start,
            "process": ended - created,
            "results": done - ended,
            "total": done - start,
            "bytes": size,
        }
    finally:
        for proc in procs:
            proc.stop()
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", default="1,2,4", help="worker counts to compare")
    parser.add_argument("--n", type=int, default=20_000, help="requests per batch for the worker runs")
    parser.add_argument("--sizes", default="10000,100000", help="batch sizes for the cost-per-request runs")
    parser.add_argument("--size-workers", type=int, default=2, help="workers for the batch-size runs")
    parser.add_argument("--latency", default="20ms", help="simulated upstream latency per request")
    parser.add_argument("--concurrency", type=int, default=64, help="backend calls in flight per worker")
    args = parser.parse_args()
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"simulated latency {args.latency}, concurrency {args.concurrency} per worker\n"
    )
    with tempfile.TemporaryDirectory(prefix="batchd-scale-") as tmp:
        workdir = Path(tmp)
        print("| workers | requests | create s | processing s | results s | end-to-end req/s |")
        print("|---|---|---|---|---|---|")
        for workers in [int(w) for w in args.workers.split(",")]:
            r = run_once(args.n, workers, args, workdir)
            print(
                f"| {workers} | {args.n:,} | {r['create']:.2f} | {r['process']:.2f} | {r['results']:.2f} "
                f"| {args.n / r['total']:,.0f} |",
                flush=True,
            )
        print("\n| requests | workers | end-to-end s | µs per request | req/s |")
        print("|---|---|---|---|---|")
        for n in [int(s) for s in args.sizes.split(",")]:
            r = run_once(n, args.size_workers, args, workdir)
            print(
                f"| {n:,} | {args.size_workers} | {r['total']:.1f} | {r['total'] / n * 1e6:,.0f} "
                f"| {n / r['total']:,.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
