"""dashboard/upstreams.py: quantiles from histogram buckets, and figures over a window of snapshots."""

from __future__ import annotations

import math

import pytest

from batchd.dashboard import upstreams
from batchd.metrics import Metrics


def test_quantiles_interpolate_within_buckets_as_prometheus_does() -> None:
    buckets = {0.1: 50.0, 0.5: 90.0, 1.0: 100.0, math.inf: 100.0}
    assert upstreams.quantile(buckets, 0.5) == pytest.approx(0.1)
    assert upstreams.quantile(buckets, 0.7) == pytest.approx(0.3)
    assert upstreams.quantile(buckets, 0.99) == pytest.approx(0.95)
    assert upstreams.quantile({0.1: 0.0, math.inf: 0.0}, 0.5) is None
    assert upstreams.quantile({0.1: 1.0, math.inf: 10.0}, 0.99) == 0.1  # beyond the last bound


def test_the_window_starts_at_a_snapshot_old_enough_or_at_the_start() -> None:
    metrics = Metrics()
    seen = upstreams.Upstreams()
    metrics.backend_error("m", "overloaded_error", retried=True)
    then, now = seen.window(metrics, 1000.0)
    assert then is upstreams.EMPTY  # nothing old enough: since the start
    assert now.errors[("m", "overloaded_error", "true")] == 1
    metrics.backend_error("m", "overloaded_error", retried=True)
    then, _ = seen.window(metrics, 1000.0 + upstreams.WINDOW / 2)
    assert then is upstreams.EMPTY
    then, now = seen.window(metrics, 1000.0 + upstreams.WINDOW + 1)
    assert then.at == 1000.0  # the newest snapshot at least WINDOW old
    delta = upstreams._delta(now.errors, then.errors)
    assert delta == {("m", "overloaded_error", "true"): 1}
