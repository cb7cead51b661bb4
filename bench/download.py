"""Results download: batchd's `GET .../results` next to the limit, on the same store file.

    python -m bench.download 10000

Creates an n-request batch on a fresh `batchd serve` (SQLite, zero-latency simulator), lets it end,
then downloads its results over loopback from batchd and from bench/limit_results.py (a minimal
server streaming the same rows from the same SQLite file, opened read-only). The first download of
each is reported on its own (batchd's comes first, right after the batch ended: its "cold" one),
then the best of ROUNDS alternating downloads. The client is the same for both: a raw socket read
into one reused buffer (an httpx stream tops out near 200 MB/s by itself on this 2-core machine and
would measure the client). Once, through httpx, both answers are checked to be the same JSONL. The
server's RSS is read before the downloads and its peak (VmHWM, reset just before them) after.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anthropic
import httpx
from tests.acceptance.server import ServerProcess, free_port

from bench.common import ROOT, Row, make_requests, ratio, rss, vm_hwm

ROUNDS = 3  # warm downloads from each server, alternating
TARGET_MBPS = 200.0
FLAT_MB = 32.0  # "RSS flat": the download's peak stays within this of the RSS before it
RUN_TIMEOUT = 900.0  # seconds for the batch to end


def log(message: str) -> None:
    print(f"[download] {message}", file=sys.stderr, flush=True)


def download(url: str) -> tuple[int, float]:
    """(body bytes, seconds) of one GET over a fresh connection, read as fast as Python can.

    A raw socket and one reused buffer, so the client costs next to nothing; the bytes counted are
    the body as sent (chunk framing included, ~10 bytes per chunk)."""
    parts = httpx.URL(url)
    buf = bytearray(1 << 22)
    view = memoryview(buf)
    start = time.perf_counter()
    with socket.create_connection((parts.host, parts.port or 80)) as sock:
        target, host = parts.raw_path.decode(), parts.host
        sock.sendall(f"GET {target} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            n = sock.recv_into(view)
            if not n:
                raise RuntimeError(f"{url}: the connection closed before the headers ended")
            head += bytes(view[:n])
        status = head.split(b" ", 2)[1]
        if status != b"200":
            raise RuntimeError(f"{url}: HTTP {status.decode()}: {head[:500]!r}")
        size = len(head) - head.index(b"\r\n\r\n") - 4
        while n := sock.recv_into(view):
            size += n
    return size, time.perf_counter() - start


def check_same(url: str, other: str) -> None:
    """Both servers send the same JSONL (read once through httpx, which undoes the framing)."""
    bodies = [httpx.get(u, timeout=600).content for u in (url, other)]
    if bodies[0] != bodies[1]:
        raise RuntimeError(f"the two servers' results differ ({len(bodies[0])} vs {len(bodies[1])} bytes)")


def rss_parts(pid: int) -> str:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    anon, file = (int(fields[k].split()[0]) / 1e3 for k in ("RssAnon", "RssFile"))
    return f"anon {anon:.0f} MB, file-backed {file:.0f} MB"


def reset_peak(pid: int) -> None:
    """Resets the process's VmHWM to its current RSS (Linux clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def start_limit(script: str, path: Path) -> tuple[subprocess.Popen[str], str]:
    """A limit server (bench/`script`, run as `script PORT PATH`) on a free port, once it says ready."""
    port = free_port()
    argv = [sys.executable, str(ROOT / "bench" / script), str(port), str(path)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if not proc.stdout.readline().startswith("ready"):
        proc.kill()
        raise RuntimeError(f"bench/{script} did not start")
    return proc, f"http://127.0.0.1:{port}"


def make_batch(srv: ServerProcess, n: int) -> str:
    with anthropic.Anthropic(base_url=srv.base_url, api_key="bench", max_retries=0, timeout=600) as client:
        batch = client.messages.batches.create(requests=make_requests(n))  # type: ignore[arg-type]
        deadline = time.monotonic() + RUN_TIMEOUT
        while (batch := client.messages.batches.retrieve(batch.id)).processing_status != "ended":
            if time.monotonic() > deadline:
                raise TimeoutError(f"the batch did not end within {RUN_TIMEOUT:.0f} s")
            time.sleep(0.1)
        if batch.request_counts.succeeded != n:
            raise RuntimeError(f"expected {n} succeeded, got {batch.request_counts}")
        return batch.id


def run(n: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="batchd-bench-") as tmp:
        srv = ServerProcess(Path(tmp) / "batchd", {"BATCHD_LOG_LEVEL": "warning"}).start()
        limit: subprocess.Popen[str] | None = None
        try:
            pid = srv.app_pid
            batch_id = make_batch(srv, n)
            log(f"{n:,} requests ended")
            limit, limit_url = start_limit("limit_results.py", Path(tmp) / "batchd" / "batchd.db")
            path = f"/v1/messages/batches/{batch_id}/results"
            before = rss(pid)
            reset_peak(pid)
            first = download(srv.base_url + path)
            limit_first = download(limit_url + path)
            ours, theirs = [first], [limit_first]
            for _ in range(ROUNDS):
                ours.append(download(srv.base_url + path))
                theirs.append(download(limit_url + path))
            peak, after, parts = vm_hwm(pid), rss(pid), rss_parts(pid)
            check_same(srv.base_url + path, limit_url + path)
        finally:
            if limit is not None:
                limit.terminate()
                limit.wait()
            srv.stop()
    size = first[0]
    mbps = [size / 1e6 / s for _, s in ours]
    limit_mbps = [size / 1e6 / s for _, s in theirs]
    log(
        f"MB/s: batchd {' '.join(f'{x:.0f}' for x in mbps)}; limit {' '.join(f'{x:.0f}' for x in limit_mbps)}"
    )
    warm, limit_warm = max(mbps[1:]), max(limit_mbps[1:])
    mb = 1e6
    what = f"{n:,} results ({size / mb:.1f} MB)"
    return [
        Row(
            scenario=f"results download, {what}: first, right after the batch ended",
            batchd=f"{mbps[0]:.0f} MB/s",
            compared=f"limit {limit_mbps[0]:.0f} MB/s (its first)",
            ratio=ratio(mbps[0], limit_mbps[0]),
            target=f"≥ {TARGET_MBPS:.0f} MB/s",
            met=mbps[0] >= TARGET_MBPS,
        ),
        Row(
            scenario=f"results download, {what}: best of {ROUNDS} later ones",
            batchd=f"{warm:.0f} MB/s",
            compared=f"limit {limit_warm:.0f} MB/s",
            ratio=ratio(warm, limit_warm),
            target=f"≥ {TARGET_MBPS:.0f} MB/s",
            met=warm >= TARGET_MBPS,
        ),
        Row(
            scenario=f"results download, {what}: server RSS over {ROUNDS + 1} downloads",
            batchd=(
                f"before {before / mb:.0f} MB, peak {peak / mb:.0f} MB, after {after / mb:.0f} MB ({parts})"
            ),
            compared="—",
            ratio="—",
            target=f"flat: peak ≤ before + {FLAT_MB:.0f} MB",
            met=peak - before <= FLAT_MB * mb,
        ),
    ]


if __name__ == "__main__":
    from bench.common import table

    print(table(run(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)))
