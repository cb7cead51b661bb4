"""Scale: a store holding 1,000,000 queued requests (ten 100,000-request batches), on SQLite and on
PostgreSQL, next to the same store holding 10,000.

    python -m bench.scale 1000000                  # both stores
    python -m bench.scale 100000 sqlite            # one store, a smaller queue

For each store (SQLite, then PostgreSQL), in one run:

1. **Per-request cost.** Three stores, each on a fresh database, are opened in this process (as
   `batchd serve` opens one) and filled (~1 KB of params a request): PROBE requests in one batch,
   PROBE in ten batches, and n in ten batches (the comparison: the same ten open batches, 100×
   the requests queued). Then ROUNDS times each: a PROBE-request batch is created
   (`create_batch`), PROBE requests are claimed in chunks of CLAIM (the engine's `claim_chunk`;
   the fair shares spread them over every open batch) and their results written in chunks of
   COMPLETE (what the engine commits at a time when its upstream answers at once). Before each
   round every store's open batches are put back as they were (the last probe batch canceled;
   the small queues, which a round drains, replaced by fresh ones), so each round claims from the
   same eleven open batches (two for the single batch). The stores take turns, round by round,
   so all see the same load on a shared machine; the cost of each operation, per request, is the
   fastest round's: its CPU time on SQLite (the store's work is all in this process, and other
   jobs move CPU time far less than wall time), its wall time on PostgreSQL (whose work is in
   its server). No HTTP, no upstream: the store is what is measured.
2. **Size.** Database bytes per queued request (SQLite: the file after a checkpoint; PostgreSQL:
   `pg_database_size` less that of an empty batchd database).
3. **Latency while it runs** (n queued only). The queue runs at full speed on the zero-latency
   simulator: on SQLite in one `batchd serve`; on PostgreSQL as a fleet is deployed, `batchd
   serve` holding the API (its engine at concurrency 1) and PG_WORKERS `batchd worker` doing the
   work. One client alternates retrieve (one running batch, the official SDK), list (the default
   20) and the dashboard's first page (`GET /`, httpx), CALLS each, sequential: p50/p99 of each
   call's wall time. Before, the same calls (CALLS/2 each) on the same database with the engine
   idle (one call at a time to a simulator answering in an hour, no worker): what the queue's
   size costs them, apart from the work running.
4. **Space returned.** In process again: every open batch is canceled, the older half archived
   (`archive_due`) and the rest deleted (`delete_batch`): the database's bytes after each (SQLite: the
   file; PostgreSQL: after a plain VACUUM, as autovacuum would run), and the time each took with the
   store's writer held. Then a new n/10-request batch is created: what the database grows by says
   whether the space freed is used again.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anthropic
import httpx
from tests.acceptance.server import ServerProcess, WorkerProcess

from bench import postgres as pg
from bench.common import Row, missing, ratio
from bench.scale_costs import CLAIM, COMPLETE, PROBE, ROUNDS, Level, measure_costs
from bench.scale_space import Reclaim, reclaim
from bench.scale_stores import Backend, PostgresBackend, SQLiteBackend, log, mb

BATCHES = 10  # the large queue's batches
CALLS = 200  # retrieves, lists and dashboard pages while the queue runs
PG_WORKERS = 1  # `batchd worker` processes running the PostgreSQL queue while the API is measured


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Latency:
    retrieve: list[float] = field(default_factory=list)
    listing: list[float] = field(default_factory=list)
    dashboard: list[float] = field(default_factory=list)
    rate: float = 0.0  # requests a second the server finished meanwhile


def serve(backend: Backend, level: Level, workdir: Path, *, idle: bool = False) -> Latency:
    """`batchd serve` runs the queue on the zero-latency simulator; retrieve, list, dashboard meanwhile.

    idle: the same server with its engine idle (one call at a time to a simulator answering in an
    hour, no worker): the queue is there, nothing runs."""
    env = {"BATCHD_LOG_LEVEL": "warning", **backend.env()}
    if idle:
        env |= {"BATCHD_SIM_LATENCY": "3600s", "BATCHD_CONCURRENCY": "1", "BATCHD_CLAIM_CHUNK": "1"}
    if isinstance(backend, SQLiteBackend):
        srv = ServerProcess(backend.dir, env)
        workers = []
    else:
        srv = ServerProcess(workdir / "api", {**env, "BATCHD_CONCURRENCY": "1", "BATCHD_CLAIM_CHUNK": "1"})
        workers = [WorkerProcess(workdir / f"w{i}", env) for i in range(0 if idle else PG_WORKERS)]
    out = Latency()
    running = level.batches[-1][0]  # the newest of the queue: claimed from all along, fairly
    try:
        srv.start()
        for worker in workers:
            worker.start()
        client = anthropic.Anthropic(base_url=srv.base_url, api_key="bench", max_retries=0, timeout=60)
        with client, httpx.Client(base_url=srv.base_url, timeout=60) as http:

            def succeeded() -> int:
                page = client.messages.batches.list(limit=100)
                return sum(b.request_counts.succeeded for b in page.data)

            start, t0 = succeeded(), time.monotonic()
            for _ in range(CALLS // 2 if idle else CALLS):
                for samples, call in (
                    (out.retrieve, lambda: client.messages.batches.retrieve(running)),
                    (out.listing, lambda: client.messages.batches.list()),
                    (out.dashboard, lambda: http.get("/").raise_for_status()),
                ):
                    c0 = time.perf_counter()
                    call()
                    samples.append(time.perf_counter() - c0)
            out.rate = (succeeded() - start) / (time.monotonic() - t0)
    finally:
        for proc in (srv, *workers):
            proc.stop()  # one not started is a no-op
    p99 = [percentile(s, 0.99) * 1e3 for s in (out.retrieve, out.listing, out.dashboard)]
    state = "idle" if idle else f"serving {out.rate:,.0f} req/s"
    log(f"{backend.name} {state}: p99 retrieve, list, dashboard {[round(x, 1) for x in p99]} ms")
    return out


def rows_for(
    name: str, one: Level, small: Level, large: Level, idle: Latency, lat: Latency, rec: Reclaim
) -> list[Row]:
    rows = []
    what = {
        "create": "create_batch",
        "claim": f"claim ({CLAIM} a call)",
        "write": f"result write ({COMPLETE} a commit)",
    }
    # SQLite does all its work in this process's threads: its CPU time is the cost, and other jobs
    # on a shared machine move it far less than the wall time. PostgreSQL's is in its server.
    cpu = name == "SQLite"

    def cost(level: Level, op: str) -> float:
        return level.costs.best_cpu(op) if cpu else level.costs.best(op)

    def figures(level: Level, op: str) -> str:
        wall = f"{level.costs.best(op) * 1e6:.1f} µs"
        return f"{wall} wall, {level.costs.best_cpu(op) * 1e6:.1f} µs CPU" if cpu else wall

    for op, label in what.items():
        big, little = cost(large, op), cost(small, op)
        rows.append(
            Row(
                scenario=f"{name}: {label} per request, {large.queued:,} queued",
                batchd=f"{figures(large, op)} per request (best of {ROUNDS} rounds of {PROBE:,})",
                compared=(
                    f"{small.queued:,} queued in {len(small.batches)} batches: {figures(small, op)} "
                    f"(in one batch: {figures(one, op)})"
                ),
                ratio=ratio(big, little) + (" (CPU)" if cpu else " (wall)"),
                target="≤ 1.2× the 10,000 figure",
                met=big <= 1.2 * little,
            )
        )
    for label, samples, quiet, target in (
        ("retrieve (SDK)", lat.retrieve, idle.retrieve, 0.020),
        ("list, 20 rows (SDK)", lat.listing, idle.listing, 0.020),
        ("dashboard first page (GET /)", lat.dashboard, idle.dashboard, 0.100),
    ):
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        i50, i99 = percentile(quiet, 0.5), percentile(quiet, 0.99)
        rows.append(
            Row(
                scenario=f"{name}: {label} while {large.queued:,} queued requests run (zero-latency sim)",
                batchd=f"p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms ({len(samples)} calls)",
                compared=(
                    f"the same {large.queued:,} queued, engine idle: p50 {i50 * 1e3:.1f} ms, p99 "
                    f"{i99 * 1e3:.1f} ms; running, the server finished {lat.rate:,.0f} req/s"
                ),
                ratio=ratio(p99, i99),
                target=f"p99 ≤ {target * 1e3:.0f} ms",
                met=p99 <= target,
            )
        )
    rows.append(
        Row(
            scenario=f"{name}: database size, {large.queued:,} queued requests (~1 KB of params each)",
            batchd=f"{large.size / large.queued:,.0f} bytes/request ({mb(large.size)})",
            compared=f"{small.queued:,} queued: {small.size / small.queued:,.0f} bytes/request",
            ratio=ratio(large.size / large.queued, small.size / small.queued),
            target="stated",
            met=None,
        )
    )
    s = rec.sizes
    fresh = rec.reuse_requests * large.size / large.queued  # what a new batch takes in a fresh database
    returned = (s["canceled"] - s["older half archived"]) / s["canceled"]
    reused = rec.reused <= 0.2 * fresh
    archived_s, archived_n = rec.settle["older half archived"]
    deleted_s, deleted_n = rec.settle["the rest deleted"]
    settled = (
        f"space back after {archived_n} sweeps ({archived_s:.1f} s) and {deleted_n} ({deleted_s:.1f} s)"
        if name == "SQLite"
        else f"VACUUM {archived_s:.1f} s and {deleted_s:.1f} s"
    )
    rows.append(
        Row(
            scenario=(
                f"{name}: space after archival and delete ({large.queued:,} requests canceled, the older "
                f"half archived, a new {rec.reuse_requests:,}-request batch, the rest deleted)"
            ),
            batchd=(
                f"{mb(s['after the run'])} → canceled {mb(s['canceled'])} → archived "
                f"{mb(s['older half archived'])} → new batch {mb(s['a new batch'])} → deleted "
                f"{mb(s['the rest deleted'])}; archive {rec.seconds['archive']:.1f} s, delete "
                f"{rec.seconds['delete']:.1f} s (longest {rec.longest_delete:.2f} s); {settled}"
            ),
            compared=(
                f"archival returned {returned:.0%} of the file; the new batch grew it {mb(rec.reused)} "
                f"(fresh: {mb(fresh)}{', reusing freed space' if reused else ''})"
            ),
            ratio=f"{s['the rest deleted'] / s['canceled']:.2f} left",
            target="archival and delete return the space (to the file system, or to the next batches)",
            met=(returned >= 0.3 or reused) and s["the rest deleted"] <= 0.25 * s["canceled"],
        )
    )
    return rows


def run_backend(backend_of: Callable[[str], Backend], n: int, workdir: Path) -> list[Row]:
    backends = [backend_of("one"), backend_of("small"), backend_of("large")]
    try:
        shapes = [(PROBE, 1), (PROBE, BATCHES), (n, BATCHES)]
        one, small, large = asyncio.run(measure_costs(backends, shapes))
        idle = serve(backends[-1], large, workdir, idle=True)
        lat = serve(backends[-1], large, workdir)
        rec = asyncio.run(reclaim(backends[-1], large))
    finally:
        for b in backends:
            if isinstance(b, PostgresBackend):
                b.drop()
    return rows_for(backends[-1].name, one, small, large, idle, lat, rec)


def run(n: int, stores: str = "sqlite,postgres") -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="batchd-bench-scale-") as tmp:
        workdir = Path(tmp)
        for name in stores.split(","):
            t0 = time.monotonic()
            if name == "sqlite":
                rows += run_backend(lambda label: SQLiteBackend(workdir, label), n, workdir)
            else:
                try:
                    pg.server_version()
                except Exception as exc:
                    rows.append(
                        missing("PostgreSQL scale", f"not run: no PostgreSQL at {pg.ADMIN_URL} ({exc})")
                    )
                    continue
                rows += run_backend(PostgresBackend, n, workdir)
            log(f"{name}: {time.monotonic() - t0:.0f} s")
    return rows


if __name__ == "__main__":
    from bench.common import table

    args = sys.argv[1:]
    print(table(run(int(args[0]) if args else 1_000_000, *(args[1:2] or []))))
