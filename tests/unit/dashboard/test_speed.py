"""dashboard/speed.py: rates, the ETA and the chart from a batch's counts and the samples taken."""

from __future__ import annotations

import pytest

from batchd import models
from batchd.dashboard import speed

T0 = 1_800_000_000.0


def batch(done: int, total: int, *, ended: float | None = None) -> models.Batch:
    status = models.ProcessingStatus.ENDED if ended else models.ProcessingStatus.IN_PROGRESS
    counts = models.RequestCounts(processing=total - done, succeeded=done)
    return models.Batch("b1", "ws", status, counts, created_at=T0, expires_at=T0 + 86400, ended_at=ended)


def test_rate_now_eta_and_chart_while_running_then_after() -> None:
    s = speed.Speed()
    first = s.figures(batch(0, 100), now=T0 + 10)
    assert first["requests_per_second"] is None and first["eta_seconds"] is None  # nothing done yet
    s.figures(batch(20, 100), now=T0 + 12)
    running = s.figures(batch(40, 100), now=T0 + 14)
    assert running["requests_per_second"] == pytest.approx(10.0)  # 20 more in the last 2 s
    assert running["average_per_second"] == pytest.approx(40 / 14)
    assert running["eta_seconds"] == pytest.approx(60 / 10.0)  # what is left at the rate now
    chart = running["chart"]
    assert chart["points"].split()[0] == "0.0,80.0" and chart["points"].split()[-1] == "320.0,48.0"
    done = s.figures(batch(100, 100, ended=T0 + 20), now=T0 + 60)
    assert done["requests_per_second"] is None and done["eta_seconds"] is None
    assert done["average_per_second"] == pytest.approx(100 / 20)  # to its end, not to now
    points = done["chart"]["points"].split()
    assert points[-1] == "320.0,0.0" and len(points) == 5  # created, 3 samples, ended


def test_samples_are_thinned_and_batches_forgotten() -> None:
    s = speed.Speed(kept=2)
    for i in range(speed.SAMPLES + 5):
        s.observe(batch(i, 10_000), now=T0 + i)
    assert len(s.observe(batch(0, 10_000), now=T0)) <= speed.SAMPLES
    for name in ("b2", "b3"):
        other = batch(0, 1)
        s.observe(models.Batch(name, "ws", other.processing_status, other.request_counts, T0, T0 + 1))
    assert s.observe(batch(0, 10_000), now=T0 + 10_000) == [(T0 + 10_000, 0)]  # b1 was dropped
