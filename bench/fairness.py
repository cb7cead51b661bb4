"""Fair scheduling: two workspaces' backlogs, a small batch of a third, and realtime calls, on one route.

    python -m bench.fairness 100000

One fresh `batchd serve` (SQLite) whose simulator route takes SLOTS calls at once, each answered
after LATENCY (so the route does SLOTS / LATENCY requests a second, as a real upstream would).
First REALTIME `POST /v1/messages` calls on the idle server, one after the other (after one
untimed, which opens the connection). Then team-a and
team-b each create a backlog of n/BIG_BATCHES-request batches (n queued in all); once both run, the
throughput of each over WINDOW seconds (their shares), REALTIME more calls while the backlog fills
the route, and team-c's SMALL-request batch: the time from its create's answer to its first
result and to its end (polling retrieve every POLL). Key order (first come, first served) would
have run it after the whole backlog: n / (SLOTS / LATENCY) seconds.

Every SAMPLE seconds from the backlog's start to the small batch's end, each batch's succeeded count
is read; the throughput of each batch over time is drawn in CHART (docs/charts/fairness.png).
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anthropic
from tests.acceptance.server import ServerProcess

from bench.common import ROOT, Row

SLOTS = 64  # calls the route takes at once
LATENCY = 0.1  # seconds per simulated call
SMALL = 10  # requests in team-c's batch
BIG_BATCHES = 2  # batches per backlog workspace in the quick profile; full: n / 100,000 each
WINDOW = 10.0  # seconds over which the two backlogs' throughputs are compared
REALTIME = 100  # realtime calls idle, and again under load (after one untimed)
POLL = 0.02  # seconds between retrieves of the small batch
MODEL = "sim-bench"
KEYS = "key-a:team-a,key-b:team-b,key-c:team-c"
SAMPLE = 0.5  # seconds between reads of every batch's succeeded count, for the chart
CHART = ROOT / "docs" / "charts" / "fairness.png"


def log(message: str) -> None:
    print(f"[fairness] {message}", file=sys.stderr, flush=True)


def requests(prefix: str, n: int) -> list[dict[str, Any]]:
    body = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hello"}]}
    return [{"custom_id": f"{prefix}{i}", "params": body} for i in range(n)]


def client(url: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, timeout=600)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def realtime(c: anthropic.Anthropic, samples: Samples | None = None) -> list[float]:
    c.messages.create(model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "warm"}])  # not timed
    out = []
    for _ in range(REALTIME):
        t0 = time.perf_counter()
        c.messages.create(model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "now"}])
        out.append(time.perf_counter() - t0)
        if samples is not None and samples.due():
            samples.take()
    return out


def done(c: anthropic.Anthropic, ids: list[str]) -> int:
    return sum(c.messages.batches.retrieve(i).request_counts.succeeded for i in ids)


class Samples:
    """Each batch's succeeded count every SAMPLE seconds: (seconds since the first, {label: count})."""

    def __init__(self, batches: dict[str, tuple[anthropic.Anthropic, str]]) -> None:
        self.batches = batches
        self.t0 = time.monotonic()
        self.points: list[tuple[float, dict[str, int]]] = []
        self.take()

    def take(self) -> None:
        counts = {
            label: c.messages.batches.retrieve(i).request_counts.succeeded
            for label, (c, i) in self.batches.items()
        }
        self.points.append((time.monotonic() - self.t0, counts))

    def due(self) -> bool:
        return time.monotonic() - self.t0 >= self.points[-1][0] + SAMPLE

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, SAMPLE))
            if self.due():
                self.take()


def chart(points: list[tuple[float, dict[str, int]]], title: str, path: Path = CHART) -> None:
    """Throughput per batch over time (req/s between consecutive samples), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(label for _, counts in points for label in counts))
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    for label in labels:
        xs, ys = [], []
        for (t0, c0), (t1, c1) in itertools.pairwise(points):
            if label in c0 and label in c1 and t1 > t0:
                xs.append(t1)
                ys.append((c1[label] - c0[label]) / (t1 - t0))
        ax.plot(xs, ys, label=label, linewidth=1.2)
    ax.set_xlabel("seconds since the backlog started")
    ax.set_ylabel("requests/s (succeeded)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def measure(url: str, n: int) -> dict[str, Any]:
    a, b, small_client = client(url, "key-a"), client(url, "key-b"), client(url, "key-c")
    idle = realtime(small_client)
    per = max(1, n // (2 * max(BIG_BATCHES, n // 200_000)))
    count = n // (2 * per)
    ids: dict[str, list[str]] = {"a": [], "b": []}
    for _ in range(count):
        for name, c in (("a", a), ("b", b)):
            ids[name].append(c.messages.batches.create(requests=requests(name, per)).id)  # type: ignore[arg-type]
    log(f"backlog: {2 * count} batches of {per:,} ({2 * count * per:,} requests)")
    samples = Samples(
        {f"team-{name} #{k + 1}": (c, i) for name, c in (("a", a), ("b", b)) for k, i in enumerate(ids[name])}
    )
    samples.sleep(1.0)
    start_a, start_b, t0 = done(a, ids["a"]), done(b, ids["b"]), time.monotonic()
    samples.sleep(WINDOW)
    got_a, got_b = done(a, ids["a"]) - start_a, done(b, ids["b"]) - start_b
    window = time.monotonic() - t0
    log(f"window {window:.1f} s: team-a {got_a}, team-b {got_b}")
    loaded = realtime(small_client, samples)
    created = time.monotonic()
    small = small_client.messages.batches.create(requests=requests("c", SMALL))  # type: ignore[arg-type]
    samples.batches[f"team-c ({SMALL} requests)"] = (small_client, small.id)
    first = end = None
    while end is None:
        if samples.due():
            samples.take()
        got = small_client.messages.batches.retrieve(small.id)
        now = time.monotonic() - created
        if first is None and got.request_counts.succeeded:
            first = now
        if got.processing_status == "ended":
            end = now
        time.sleep(POLL)
    samples.sleep(2.0)  # the backlog's pace after the small batch
    queued = sum(a.messages.batches.retrieve(i).request_counts.processing for i in ids["a"]) + sum(
        b.messages.batches.retrieve(i).request_counts.processing for i in ids["b"]
    )
    for name, c in (("a", a), ("b", b)):
        for i in ids[name]:
            c.messages.batches.cancel(i)
    return {
        "n": 2 * count * per,
        "a": got_a,
        "b": got_b,
        "window": window,
        "first": first,
        "end": end,
        "queued": queued,
        "idle": idle,
        "loaded": loaded,
        "points": samples.points,
        "small_at": created - samples.t0,
    }


def run(n: int, reserve: int = 0) -> list[Row]:
    """reserve: the server's realtime_reserve."""
    env = {
        "BATCHD_REALTIME_RESERVE": str(reserve),
        "BATCHD_LOG_LEVEL": "warning",
        "BATCHD_API_KEYS": KEYS,
        "BATCHD_SIM_LATENCY": f"{LATENCY}s",
        "BATCHD_ROUTES": json.dumps([{"model": "sim-*", "concurrency": SLOTS}]),
    }
    with tempfile.TemporaryDirectory(prefix="batchd-bench-") as tmp:
        srv = ServerProcess(Path(tmp) / "batchd", env).start()
        try:
            m = measure(srv.base_url, n)
        finally:
            srv.stop()
    rate = SLOTS / LATENCY
    route = f"route of {SLOTS} slots × {LATENCY * 1000:.0f} ms"
    share = min(m["a"], m["b"]) / max(m["a"], m["b"], 1)
    i50, i99 = percentile(m["idle"], 0.5) * 1e3, percentile(m["idle"], 0.99) * 1e3
    l50, l99 = percentile(m["loaded"], 0.5) * 1e3, percentile(m["loaded"], 0.99) * 1e3
    log(f"small batch: first result {m['first']:.2f} s, ended {m['end']:.2f} s; {m['queued']:,} still queued")
    log(f"realtime ms: idle p50 {i50:.0f} p99 {i99:.0f}; loaded p50 {l50:.0f} p99 {l99:.0f}")
    chart(
        m["points"],
        f"Throughput per batch: {m['n']:,} queued in two workspaces, a {SMALL}-request batch of a third "
        f"at {m['small_at']:.0f} s;\n{route} ({rate:.0f} req/s); {REALTIME} realtime calls "
        f"from {1 + m['window']:.0f} s",
    )
    log(f"chart: {CHART}")
    return [
        Row(
            scenario=f"two workspaces' backlogs ({m['n']:,} queued), {route}, {m['window']:.0f} s window",
            batchd=f"team-a {m['a'] / m['window']:.0f} req/s, team-b {m['b'] / m['window']:.0f} req/s",
            compared=f"route capacity {rate:.0f} req/s",
            ratio=f"{share:.2f} (smaller/larger)",
            target="equal within 10%",
            met=share >= 0.9,
        ),
        Row(
            scenario=f"a {SMALL}-request batch of a third workspace behind {m['n']:,} queued, {route}",
            batchd=f"first result {m['first']:.2f} s, ended {m['end']:.2f} s after create",
            compared=f"first come, first served: ~{m['queued'] / rate:.0f} s ({m['queued']:,} queued ahead)",
            ratio="—",
            target="first result ≤ 1 s, end within a few s",
            met=m["first"] <= 1.0 and m["end"] <= 5.0,
        ),
        Row(
            scenario=f"realtime POST /v1/messages while the backlog fills the {route}, SDK, sequential",
            batchd=f"p50 {l50:.0f} ms, p99 {l99:.0f} ms ({REALTIME} calls)",
            compared=f"idle route: p50 {i50:.0f} ms, p99 {i99:.0f} ms",
            ratio=f"{l99 / i99:.2f}×",
            target="p99 ≤ 1.5× idle",
            met=l99 <= 1.5 * i99,
        ),
    ]


if __name__ == "__main__":
    from bench.common import table

    print(table(run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)))
