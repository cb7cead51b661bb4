"""The upstreams page's figures: each route with its backend, calls in flight, concurrency limit,
latency p50/p99, errors and retries by type over the last minutes, and a health probe.

Everything comes from this process: its router (`Route.in_use`, `Route.capacity`, and the batch
calls' adaptive limit `Route.adaptive`, engine/adaptive.py) and the very
counters `/metrics` exposes (`batchd_backend_latency_seconds`, `batchd_backend_errors_total`), read
back from the app's registry. Those are counted by model; a model's figures go to the route that
serves it. In a fleet each process sees only its own calls, and the page says so. "The last
minutes" are the difference between the counters now and the newest snapshot this module took at
least WINDOW seconds ago (snapshots are taken when the page is shown, at most every
SNAPSHOT_EVERY); until one is that old, the counts since the process started. The page says which.

Only routes are shown, never model names: with API keys, the models other workspaces asked for
are theirs (which is why `/metrics` is the operator's).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from batchd import exceptions
from batchd.backends.base import ListsModels
from batchd.engine.router import Route, Router
from batchd.metrics import Metrics
from batchd.tools.kit import unwrap

WINDOW = 300.0  # seconds: what "the last minutes" means
SNAPSHOT_EVERY = 5.0  # seconds between two snapshots
PROBE_TTL = 15.0  # seconds a probe's verdict is reused
PROBE_TIMEOUT = 2.0  # seconds a probe may take

Key = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Snapshot:
    at: float  #: time.time()
    latency: Mapping[Key, float]  #: (model, le) -> cumulative count; ("model", "count") too
    errors: Mapping[Key, float]  #: (model, error_type, retried) -> count


def snapshot(metrics: Metrics, now: float) -> Snapshot:
    latency: dict[Key, float] = {}
    errors: dict[Key, float] = {}
    for family in metrics.registry.collect():
        for s in family.samples:
            if s.name == "batchd_backend_latency_seconds_bucket":
                latency[(s.labels["model"], s.labels["le"])] = s.value
            elif s.name == "batchd_backend_latency_seconds_count":
                latency[(s.labels["model"], "count")] = s.value
            elif s.name == "batchd_backend_errors_total":
                errors[(s.labels["model"], s.labels["error_type"], s.labels["retried"])] = s.value
    return Snapshot(now, latency, errors)


EMPTY = Snapshot(0.0, {}, {})


def _delta(now: Mapping[Key, float], then: Mapping[Key, float]) -> dict[Key, float]:
    return {k: v - then.get(k, 0.0) for k, v in now.items() if v - then.get(k, 0.0) > 0}


def quantile(buckets: Mapping[float, float], q: float) -> float | None:
    """The `q` quantile (seconds) of a histogram's cumulative `buckets` (upper bound -> count),
    interpolated within its bucket as Prometheus' histogram_quantile does; None without calls."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower  # beyond the last finite bucket: its bound is all that is known
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


class Upstreams:
    """Snapshots and probe verdicts, kept between views; one per app."""

    def __init__(self) -> None:
        self._snapshots: collections.deque[Snapshot] = collections.deque()
        self._probes: dict[int, tuple[float, dict[str, Any]]] = {}

    def window(self, metrics: Metrics, now: float) -> tuple[Snapshot, Snapshot]:
        """(then, now): the counters now and those WINDOW ago (or the oldest kept)."""
        current = snapshot(metrics, now)
        while len(self._snapshots) > 1 and now - self._snapshots[1].at >= WINDOW:
            self._snapshots.popleft()
        # The newest snapshot at least WINDOW old; until there is one, the process's start.
        then = self._snapshots[0] if self._snapshots and now - self._snapshots[0].at >= WINDOW else EMPTY
        if not self._snapshots or now - self._snapshots[-1].at >= SNAPSHOT_EVERY:
            self._snapshots.append(current)
        return then, current

    async def figures(self, router: Router | None, metrics: Metrics, now: float) -> dict[str, Any]:
        then, current = self.window(metrics, now)
        if router is None:
            return {"routes": [], "since": then.at or None, "engine": False}
        routes = [*router.routes, router.default]
        latency = _delta(current.latency, then.latency)
        errors = _delta(current.errors, then.errors)
        probes = await asyncio.gather(*(self.probe(r) for r in routes))
        rows = [
            _row(route, router, latency, errors, probe) for route, probe in zip(routes, probes, strict=True)
        ]
        return {"routes": rows, "since": then.at or None, "engine": True}

    async def probe(self, route: Route) -> dict[str, Any]:
        """Whether the route's upstream answers: its model list asked for (an HTTP upstream), at
        most every PROBE_TTL; up when it answers below 500 (a 404 or 401 is a live server that
        does not list), down on a 5xx, no connection or no answer within PROBE_TIMEOUT. A backend
        inside batchd answers by being there."""
        backend = unwrap(route.backend)
        if not isinstance(backend, ListsModels):
            return {"ok": True, "detail": "in process", "ms": None}
        found = self._probes.get(id(backend))
        now = time.monotonic()
        if found is not None and now - found[0] < PROBE_TTL:
            return found[1]
        started = time.monotonic()
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                ids = await backend.model_ids()
            verdict = {"ok": True, "detail": f"{len(ids)} models listed", "ms": None}
        except TimeoutError:
            verdict = {"ok": False, "detail": f"no answer within {PROBE_TIMEOUT:g} s", "ms": None}
        except exceptions.BackendError as exc:
            # An HTTP answer that refuses the listing (404: none; 401) still shows a live upstream.
            reachable = exc.status < 500
            detail = f"answers, without a model list (HTTP {exc.status})" if reachable else exc.message
            verdict = {"ok": reachable, "detail": detail[:200], "ms": None}
        verdict["ms"] = round(1000 * (time.monotonic() - started), 1)
        self._probes[id(backend)] = (now, verdict)
        return verdict


def _row(
    route: Route,
    router: Router,
    latency: Mapping[Key, float],
    errors: Mapping[Key, float],
    probe: dict[str, Any],
) -> dict[str, Any]:
    mine = {model for model in _models(latency, errors) if router.route(model) is route}
    buckets: dict[float, float] = collections.defaultdict(float)
    calls = 0.0
    for (model, le), value in latency.items():
        if model in mine:
            if le == "count":
                calls += value
            else:
                buckets[float(le)] += value
    failed: dict[str, int] = collections.defaultdict(int)
    retried: dict[str, int] = collections.defaultdict(int)
    for (model, error_type, was_retried), value in errors.items():
        if model in mine:
            (retried if was_retried == "true" else failed)[error_type] += int(value)
    p50, p99 = quantile(buckets, 0.5), quantile(buckets, 0.99)
    return {
        "route": route.config.model if route.config else "(default)",
        "backend": unwrap(route.backend).kind.value,
        "in_flight": route.in_use,
        "concurrency": route.capacity,
        "adaptive_limit": None if route.adaptive is None else route.adaptive.limit,
        "calls": int(calls),
        "latency_p50_ms": None if p50 is None else round(1000 * p50, 1),
        "latency_p99_ms": None if p99 is None else round(1000 * p99, 1),
        "errors": dict(sorted(failed.items())),
        "retries": dict(sorted(retried.items())),
        "probe": probe,
    }


def _models(*series: Iterable[Key]) -> set[str]:
    return {key[0] for keys in series for key in keys}
