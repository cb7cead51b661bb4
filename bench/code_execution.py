"""Code execution: a container's start and a one-line program's round trip in the sandbox, and
100 programs at once.

    python -m bench.code_execution 100

1. **Start and round trip.** n times, one after the other: a container's home is created
   (`create_home`), then `python3 -c 'print(1)'` runs in a fresh sandbox over it (`run`, as a
   bash or legacy Python call does): p50/p99 of each, and of the two together. The same
   one-liner run directly, outside any sandbox, in the same run, is the baseline; at the
   sandbox's niceness (10), since on a busy machine a niced program waits for the others.
2. **REPL.** A REPL is started in a container (p50 of the start), then n cells `print(1)` run
   in it one after the other (as the 20260521 tool's calls do): p50/p99 of a cell's round trip.
3. **100 at once.** CONCURRENT programs (`python3 -c` summing a range) started together, each in
   its own container: failures (an exception or a wrong answer) and the wall time of all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batchd.tools.code_execution.bwrap import NICENESS
from bench.common import Row

TARGET_P50_MS = 50.0
CONCURRENT = 100
ONE_LINER = ["python3", "-c", "print(1)"]
# The baseline at the sandbox's niceness: on a busy machine a niced program waits its turn, and
# that is not the sandbox's cost.
BASELINE = ["/usr/bin/nice", "-n", str(NICENESS), "/usr/bin/python3", "-c", "print(1)"]


def log(message: str) -> None:
    print(f"[code_execution] {message}", file=sys.stderr, flush=True)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclasses.dataclass
class Figures:
    creates: list[float]  # ms each
    runs: list[float]
    both: list[float]
    direct: list[float]
    starts: list[float]
    cells: list[float]
    failures: int
    wall: float  # s, CONCURRENT programs at once


def ms(samples: list[float]) -> str:
    return f"p50 {percentile(samples, 0.5):.1f} ms, p99 {percentile(samples, 0.99):.1f} ms"


async def measure(root: Path, n: int) -> Figures:
    from batchd.tools.code_execution.sandbox import Sandbox

    sandbox = Sandbox(root=root)
    reason = sandbox.probe()
    if reason is not None:
        raise RuntimeError(f"the sandbox cannot run here: {reason}")
    for i in range(3):  # warm the page cache and the interpreter's files
        await sandbox.run(sandbox.create_home(f"warm{i}"), ONE_LINER)

    creates: list[float] = []
    runs: list[float] = []
    both: list[float] = []
    direct: list[float] = []
    for i in range(n):
        t0 = time.perf_counter()
        home = sandbox.create_home(f"container_{i}")
        t1 = time.perf_counter()
        done = await sandbox.run(home, ONE_LINER)
        t2 = time.perf_counter()
        assert done.stdout == "1\n" and done.return_code == 0, done
        creates.append((t1 - t0) * 1e3)
        runs.append((t2 - t1) * 1e3)
        both.append((t2 - t0) * 1e3)
        t3 = time.perf_counter()
        raw = await asyncio.create_subprocess_exec(*BASELINE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        await raw.communicate()
        direct.append((time.perf_counter() - t3) * 1e3)
    log(f"create_home {ms(creates)}; run {ms(runs)}; both {ms(both)}; outside the sandbox {ms(direct)}")

    home = sandbox.create_home("container_repl")
    starts: list[float] = []
    cells: list[float] = []
    for _ in range(3):
        t0 = time.perf_counter()
        repl = await sandbox.start_repl(home)
        starts.append((time.perf_counter() - t0) * 1e3)
        await repl.close()
    repl = await sandbox.start_repl(home)
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            done = await repl.run_cell("print(1)")
            cells.append((time.perf_counter() - t0) * 1e3)
            assert done.stdout == "1\n", done
    finally:
        await repl.close()
    log(f"REPL start p50 {percentile(starts, 0.5):.0f} ms; cell {ms(cells)}")

    homes = [sandbox.create_home(f"container_c{i}") for i in range(CONCURRENT)]
    code = "print(sum(range(100_000)))"

    async def one(home: Path) -> bool:
        try:
            done = await sandbox.run(home, ["python3", "-c", code])
        except Exception as exc:
            log(f"failed: {type(exc).__name__}: {exc}")
            return False
        if done.stdout != f"{sum(range(100_000))}\n" or done.return_code != 0:
            log(f"failed: {done}")
            return False
        return True

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(h) for h in homes))
    wall = time.perf_counter() - t0
    failures = results.count(False)
    log(f"{CONCURRENT} at once: {failures} failures, {wall:.2f} s")
    return Figures(creates, runs, both, direct, starts, cells, failures, wall)


def run(n: int) -> list[Row]:
    if shutil.which("bwrap") is None:
        raise RuntimeError("bubblewrap (bwrap) is not installed")
    base = Path(tempfile.mkdtemp(prefix="batchd-bench-sandbox-"))
    os.chmod(base, 0o755)  # the sandbox user walks through it to the homes
    try:
        m = asyncio.run(measure(base / "containers", n))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    creates, runs, both, direct, starts, cells = m.creates, m.runs, m.both, m.direct, m.starts, m.cells
    failures, wall = m.failures, m.wall
    p50_both, p50_direct, p50_cell = percentile(both, 0.5), percentile(direct, 0.5), percentile(cells, 0.5)
    return [
        Row(
            f"code execution: container start (create_home) + `python3 -c 'print(1)'` in a fresh sandbox, "
            f"{n} runs",
            f"{ms(both)} (create_home {percentile(creates, 0.5):.2f} ms, run {percentile(runs, 0.5):.1f} ms)",
            f"the same one-liner outside any sandbox (nice {NICENESS}): p50 {p50_direct:.1f} ms",
            f"{p50_both / p50_direct:.2f}×",
            f"p50 ≤ {TARGET_P50_MS:g} ms",
            p50_both <= TARGET_P50_MS,
        ),
        Row(
            f"code execution: a REPL cell `print(1)` on a started REPL, {n} cells",
            f"{ms(cells)} (the REPL's start: p50 {percentile(starts, 0.5):.0f} ms)",
            "—",
            "—",
            f"p50 ≤ {TARGET_P50_MS:g} ms",
            p50_cell <= TARGET_P50_MS,
        ),
        Row(
            f"code execution: {CONCURRENT} programs at once, each in its own sandbox",
            f"{failures} failures, {wall:.2f} s wall time",
            "—",
            "—",
            "no failure",
            failures == 0,
        ),
    ]


if __name__ == "__main__":
    for row in run(int(sys.argv[1]) if len(sys.argv) > 1 else 100):
        print(row.markdown())
