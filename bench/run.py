"""batchd benchmark: create, end-to-end and results figures next to the physical limit, one run.

    python bench/run.py                 # 10,000 and 100,000 requests
    python bench/run.py --sizes 10000   # quick

For each size it starts a fresh `batchd serve` (SQLite, zero-latency simulator) and the minimal
limit server (bench/limit_server.py), sends the same SDK create call to both, then lets batchd run
the batch and downloads the results. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anthropic
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.acceptance.server import ServerProcess, free_port  # noqa: E402

PAD = "lorem ipsum dolor sit amet " * 32  # ~860 bytes, so params are ~1 KB


def make_requests(n: int) -> list[dict[str, object]]:
    return [
        {
            "custom_id": f"req-{i}",
            "params": {
                "model": "claude-sonnet-4-5-20250929",
                "max_tokens": 64,
                "system": "You are a terse benchmark assistant.",
                "messages": [{"role": "user", "content": f"Request {i}: {PAD}"}],
            },
        }
        for i in range(n)
    ]


def vm_hwm(pid: int) -> int:
    """Peak resident set size of a process, bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def timed_create(base_url: str, requests: list[dict[str, object]]) -> float:
    with anthropic.Anthropic(base_url=base_url, api_key="bench", max_retries=0, timeout=600) as client:
        start = time.perf_counter()
        client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        return time.perf_counter() - start


def limit_create(requests: list[dict[str, object]], workdir: Path) -> float:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "limit_server.py"), str(port), str(workdir / "limit.db")],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        return timed_create(f"http://127.0.0.1:{port}", requests)
    finally:
        proc.terminate()
        proc.wait()


def run_size(n: int, workdir: Path) -> dict[str, float]:
    requests = make_requests(n)
    body_bytes = len(orjson.dumps({"requests": requests}))
    limit_s = limit_create(requests, workdir)

    srv = ServerProcess(workdir / f"batchd-{n}", {"BATCHD_LOG_LEVEL": "warning"}).start()
    try:
        assert srv.proc is not None
        pid = srv.proc.pid
        base_rss = rss(pid)
        with anthropic.Anthropic(
            base_url=srv.base_url, api_key="bench", max_retries=0, timeout=600
        ) as client:
            start = time.perf_counter()
            batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
            create_s = time.perf_counter() - start
            create_hwm = vm_hwm(pid)
            while (batch := client.messages.batches.retrieve(batch.id)).processing_status != "ended":
                time.sleep(0.02)
            e2e_s = time.perf_counter() - start
            assert batch.request_counts.succeeded == n, batch
            run_hwm = vm_hwm(pid)

            start = time.perf_counter()
            size = 0
            with httpx.stream("GET", srv.base_url + str(batch.results_url), timeout=600) as r:
                for chunk in r.iter_raw(1 << 20):
                    size += len(chunk)
            dl_s = time.perf_counter() - start
            start = time.perf_counter()
            count = sum(1 for _ in client.messages.batches.results(batch.id))
            sdk_s = time.perf_counter() - start
            assert count == n
            dl_hwm = vm_hwm(pid)
    finally:
        srv.stop()
    return {
        "n": n,
        "body_mb": body_bytes / 1e6,
        "limit_s": limit_s,
        "create_s": create_s,
        "base_rss_mb": base_rss / 1e6,
        "create_hwm_mb": create_hwm / 1e6,
        "run_hwm_mb": run_hwm / 1e6,
        "dl_hwm_mb": dl_hwm / 1e6,
        "e2e_s": e2e_s,
        "rps": n / (e2e_s - create_s),
        "rps_incl_create": n / e2e_s,
        "results_mb": size / 1e6,
        "dl_mbps": size / 1e6 / dl_s,
        "sdk_lines_per_s": n / sdk_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="batchd-bench-"))
    rows = []
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            rows.append(run_size(n, workdir))
            print(f"done {n}", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nbatchd bench on {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}\n")
    print(
        "| requests | body MB | create s (limit s, ratio) | server peak RSS MB (× body) | "
        "run req/s (incl. create) | results MB at MB/s | SDK lines/s |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['n']:,} | {r['body_mb']:.1f} | {r['create_s']:.2f} ({r['limit_s']:.2f}, "
            f"{r['create_s'] / r['limit_s']:.2f}×) | {r['create_hwm_mb']:.0f} "
            f"({r['create_hwm_mb'] / r['body_mb']:.2f}×; after run {r['run_hwm_mb']:.0f}, after download "
            f"{r['dl_hwm_mb']:.0f}) | {r['rps']:,.0f} ({r['rps_incl_create']:,.0f}) | "
            f"{r['results_mb']:.1f} at {r['dl_mbps']:,.0f} | {r['sdk_lines_per_s']:,.0f} |"
        )


if __name__ == "__main__":
    main()
