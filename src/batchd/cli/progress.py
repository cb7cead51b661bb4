"""Live progress for `batchd submit --wait` and `batchd watch`: per-type counts, rate and ETA."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from anthropic.types.messages import MessageBatch

KINDS = ("succeeded", "errored", "canceled", "expired")
RATE_WINDOW = 30.0  # seconds of observations the rate is measured over
PLAIN_EVERY = 5.0  # seconds between progress lines when stderr is not a terminal


def counts(batches: Sequence[MessageBatch]) -> dict[str, int]:
    total = {k: 0 for k in ("processing", *KINDS)}
    for b in batches:
        for k in total:
            total[k] += getattr(b.request_counts, k)
    return total


class Rate:
    """Requests finished per second over the last RATE_WINDOW seconds, and the time left."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, done: int, now: float) -> None:
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > RATE_WINDOW:
            self.samples.popleft()

    def per_second(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else None

    def eta(self, remaining: int) -> float | None:
        rate = self.per_second()
        if not remaining:
            return 0.0
        return remaining / rate if rate else None


def _done(c: dict[str, int]) -> int:
    return sum(c.values()) - c["processing"]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds + 0.5)
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


def summary_line(c: dict[str, int], rate: Rate | None = None) -> str:
    total = sum(c.values())
    done = total - c["processing"]
    parts = [f"{done}/{total} done"] + [f"{c[k]} {k}" for k in KINDS if c[k]]
    if c["processing"]:
        parts.append(f"{c['processing']} processing")
    if rate is not None:
        per_s = rate.per_second()
        parts.append(f"{per_s:.1f} req/s" if per_s is not None else "… req/s")
        parts.append(f"ETA {_duration(rate.eta(c['processing']))}")
    return " · ".join(parts)


def render(batches: Sequence[MessageBatch], rate: Rate) -> Group:
    table = Table.grid(padding=(0, 2))
    table.add_column()
    table.add_column(width=40)
    table.add_column()
    rows = list(batches) if len(batches) > 1 else []
    for b in rows:
        c = counts([b])
        total = sum(c.values())
        table.add_row(
            Text(b.id, style="cyan"),
            ProgressBar(total=max(total, 1), completed=total - c["processing"], width=40),
            Text(f"{b.processing_status:<11} " + summary_line(c)),
        )
    c = counts(batches)
    total = sum(c.values())
    label = "total" if rows else batches[0].id
    table.add_row(
        Text(label, style="bold cyan"),
        ProgressBar(total=max(total, 1), completed=total - c["processing"], width=40),
        Text(summary_line(c, rate), style="bold"),
    )
    return Group(table)


def watch(
    retrieve: Callable[[str], MessageBatch],
    batch_ids: Sequence[str],
    console: Console,
    interval: float = 1.0,
) -> list[MessageBatch]:
    """Polls until every batch has ended; returns the final batch objects."""
    rate = Rate()
    batches = [retrieve(i) for i in batch_ids]
    if console.is_terminal:
        with Live(render(batches, rate), console=console, refresh_per_second=4) as live:
            while not all(b.processing_status == "ended" for b in batches):
                time.sleep(interval)
                batches = [retrieve(i) for i in batch_ids]
                rate.add(_done(counts(batches)), time.monotonic())
                live.update(render(batches, rate))
        return batches
    last = 0.0
    while True:
        c = counts(batches)
        rate.add(_done(c), time.monotonic())
        ended = all(b.processing_status == "ended" for b in batches)
        if ended or time.monotonic() - last >= PLAIN_EVERY:
            console.print(summary_line(c, rate), highlight=False)
            last = time.monotonic()
        if ended:
            return batches
        time.sleep(interval)
        batches = [retrieve(i) for i in batch_ids]
