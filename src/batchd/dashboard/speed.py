"""How fast a batch runs: requests per second now and on average, an ETA, and its progress over time.

The store keeps no time per result (a result line is the API's bytes, nothing more), so the figures
come from two sources: the batch's own times and counts (the average since creation, always right)
and samples of its settled count that this process takes each time a dashboard page or its JSON
twin shows the batch (the rate "now", over the last RATE_WINDOW seconds, and the chart's points in
between). A batch no one watched has a chart of two points, created and ended: a straight line.
"""

from __future__ import annotations

import collections
import time
from typing import Any

from batchd import models

SAMPLE_EVERY = 1.0  # seconds between two samples of one batch
SAMPLES = 360  # kept per batch; beyond, every other old sample is dropped
RATE_WINDOW = 15.0  # seconds the rate "now" looks back
KEPT = 512  # batches sampled (least recently shown dropped first)
WIDTH, HEIGHT = 320, 80  # the chart's drawing box, in SVG units


def settled(batch: models.Batch) -> int:
    c = batch.request_counts
    return c.succeeded + c.errored + c.canceled + c.expired


class Speed:
    """Samples of batches' settled counts (module docstring); one per app."""

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._samples: collections.OrderedDict[str, list[tuple[float, int]]] = collections.OrderedDict()

    def observe(self, batch: models.Batch, now: float | None = None) -> list[tuple[float, int]]:
        """Records the batch's settled count now (at most every SAMPLE_EVERY); its samples."""
        now = time.time() if now is None else now
        samples = self._samples.pop(batch.id, None) or []
        self._samples[batch.id] = samples
        while len(self._samples) > self.kept:
            self._samples.popitem(last=False)
        if batch.processing_status is not models.ProcessingStatus.ENDED and (
            not samples or now - samples[-1][0] >= SAMPLE_EVERY
        ):
            samples.append((now, settled(batch)))
            if len(samples) > SAMPLES:
                half = len(samples) // 2
                samples[:half] = samples[:half:2]
        return samples

    def figures(self, batch: models.Batch, now: float | None = None) -> dict[str, Any]:
        """Rates (requests/s), the ETA (seconds) and the chart of one batch, for a page or its twin."""
        now = time.time() if now is None else now
        samples = self.observe(batch, now)
        done = settled(batch)
        total = done + batch.request_counts.processing
        end = batch.ended_at if batch.ended_at is not None else now
        elapsed = max(end - batch.created_at, 1e-3)
        average = done / elapsed
        current = None
        if batch.processing_status is not models.ProcessingStatus.ENDED:
            recent = [s for s in samples if now - s[0] <= RATE_WINDOW]
            if len(recent) >= 2 and recent[-1][0] - recent[0][0] >= SAMPLE_EVERY:
                current = (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0])
        rate = current if current is not None else average
        eta = None
        if batch.processing_status is models.ProcessingStatus.IN_PROGRESS and rate > 0:
            eta = batch.request_counts.processing / rate
        points = [(batch.created_at, 0), *samples]
        if batch.ended_at is not None:
            points.append((batch.ended_at, done))
        elif not samples or samples[-1][0] < now:
            points.append((now, done))
        return {
            "requests_per_second": current,
            "average_per_second": average,
            "eta_seconds": eta,
            "elapsed_seconds": elapsed,
            "chart": chart(points, total),
        }


def chart(points: list[tuple[float, int]], total: int) -> dict[str, Any]:
    """The points of an SVG polyline in a WIDTH × HEIGHT box (time across, settled requests up),
    with what its axes mean. Drawn by the template; app.js moves the line as new figures arrive."""
    t0 = points[0][0]
    span = max(points[-1][0] - t0, 1e-3)
    top = max(total, 1)
    drawn = " ".join(f"{WIDTH * (t - t0) / span:.1f},{HEIGHT - HEIGHT * n / top:.1f}" for t, n in points)
    return {
        "points": drawn,
        "width": WIDTH,
        "height": HEIGHT,
        "seconds": span,
        "total": total,
        "samples": len(points),
    }
