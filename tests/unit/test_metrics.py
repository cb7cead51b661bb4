"""Metrics: per-app registries, bounded labels, /metrics and /health over the ASGI app."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.testclient import TestClient

from batchd import __version__, app, config, exceptions, metrics
from batchd.store.base import WriteProblem
from tests.unit.conftest import app_on


def sample(m: metrics.Metrics, name: str, **labels: str) -> float | None:
    value: float | None = m.registry.get_sample_value(name, labels)
    return value


def test_registries_are_per_app() -> None:
    a, b = metrics.Metrics(), metrics.Metrics()
    a.result("succeeded", "m")
    a.result("succeeded", "m")
    assert sample(a, "batchd_requests_total", result="succeeded", model="m") == 2
    assert sample(b, "batchd_requests_total", result="succeeded", model="m") is None


def test_engine_hooks_and_create_sizes() -> None:
    m = metrics.Metrics()
    m.backend_latency("m", 0.02)
    m.retry("overloaded_error")
    m.claimed(5)
    m.claimed(0)
    m.batch_created(3, 1500)
    m.watch_engine(lambda: 7, lambda: 4)
    assert sample(m, "batchd_backend_latency_seconds_count", model="m") == 1
    assert sample(m, "batchd_retries_total", error_type="overloaded_error") == 1
    assert sample(m, "batchd_claimed_requests_total") == 5
    assert sample(m, "batchd_batch_create_requests_sum") == 3
    assert sample(m, "batchd_batch_create_bytes_sum") == 1500
    assert sample(m, "batchd_inflight_requests") == 7
    assert sample(m, "batchd_queued_requests") == 3
    assert b"batchd_backend_calls_in_progress 4.0" in m.render()


def test_model_labels_are_bounded() -> None:
    m = metrics.Metrics()
    for i in range(metrics.MAX_MODELS + 10):
        m.result("succeeded", f"model-{i}")
    m.result("errored", None)
    assert sample(m, "batchd_requests_total", result="succeeded", model="other") == 10
    assert sample(m, "batchd_requests_total", result="errored", model="other") == 1


class DeadStore:
    async def list_batches(self, *args: Any, **kwargs: Any) -> Any:
        raise exceptions.StoreUnavailable("the database failed: disk I/O error at /secret/path")


class FineStore:
    """Answers reads; its write probe says `problem` (None: writable) and counts its calls."""

    def __init__(self, problem: WriteProblem | None = None) -> None:
        self.problem = problem
        self.probes = 0

    async def list_batches(self, *args: Any, **kwargs: Any) -> Any:
        return [], False

    async def probe_write(self, *, now: float) -> WriteProblem | None:
        self.probes += 1
        return self.problem

    async def usage(self, workspace: str | None = None) -> list[Any]:
        return []


class StuckStore(FineStore):
    """A write probe that waits behind a long write (SQLite's one writer) until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def probe_write(self, *, now: float) -> WriteProblem | None:
        await self.release.wait()
        return await super().probe_write(now=now)


def test_health_reports_the_store() -> None:
    with TestClient(app_on(FineStore())) as client:
        r = client.get("/health")
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert r.json()["limits"] == {"max_requests": 100_000, "max_batch_bytes": 256 * 1024 * 1024}
    with TestClient(app_on(DeadStore())) as client:
        r = client.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
        assert r.json()["reason"] == "the store does not answer"  # the details stay in the log
        assert "secret" not in r.text


@pytest.mark.parametrize("problem", list(WriteProblem))
def test_health_is_degraded_while_the_store_cannot_be_written(
    problem: WriteProblem, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FineStore(problem)
    with TestClient(app_on(store)) as client:
        r = client.get("/health")
        assert r.status_code == 503, r.text
        assert r.json() == {
            "status": "degraded",
            "reason": f"the store cannot be written: {problem}",
            "version": __version__,
        }
        store.problem = None  # space freed: writable again at the next probe
        monkeypatch.setattr(app, "PROBE_INTERVAL", 0.0)
        assert client.get("/health").json()["status"] == "ok"


def test_health_probes_writes_at_most_every_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "PROBE_INTERVAL", 3600.0)
    store = FineStore()
    with TestClient(app_on(store)) as client:
        for _ in range(5):
            assert client.get("/health").status_code == 200
    assert store.probes == 1


def test_health_does_not_wait_for_a_probe_stuck_behind_a_long_write(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "PROBE_WAIT", 0.01)
    store = StuckStore()
    with TestClient(app_on(store)) as client:
        assert client.get("/health").json()["status"] == "ok"  # no verdict yet: the store opened fine
        store.problem = WriteProblem.DISK_FULL
        client.portal.call(store.release.set)  # type: ignore[union-attr]
        deadline = 1000
        while client.get("/health").status_code == 200:  # the stuck probe's verdict arrives
            deadline -= 1
            assert deadline, "the probe's verdict never arrived"
        assert store.probes == 1
        assert client.get("/health").json()["reason"] == "the store cannot be written: disk full"


def test_metrics_endpoint_counts_requests() -> None:
    with TestClient(app_on(FineStore())) as client:
        client.get("/health")
        r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert 'batchd_http_requests_total{method="GET",route="/health",status="200"} 1.0' in r.text


def test_metrics_are_the_operators_not_a_workspaces() -> None:
    settings = config.Settings(api_keys={"k": "w"}, metrics_keys=frozenset({"m"}))
    with TestClient(app_on(FineStore(), settings)) as client:
        none = client.get("/metrics")
        assert none.status_code == 401 and none.json()["error"]["type"] == "authentication_error"
        assert client.get("/metrics", headers={"x-api-key": "nope"}).status_code == 401
        workspace = client.get("/metrics", headers={"x-api-key": "k"})
        assert workspace.status_code == 403, workspace.text
        assert workspace.json()["error"]["type"] == "permission_error"
        assert "metrics_keys" in workspace.json()["error"]["message"]
        assert client.get("/metrics", headers={"x-api-key": "m"}).status_code == 200
        assert client.get("/metrics", headers={"authorization": "Bearer m"}).status_code == 200
        # A metrics key is not an API key.
        assert client.get("/v1/messages/batches", headers={"x-api-key": "m"}).status_code == 401
    no_operator = config.Settings(api_keys={"k": "w"})
    with TestClient(app_on(FineStore(), no_operator)) as client:
        assert client.get("/metrics", headers={"x-api-key": "k"}).status_code == 403


def test_access_log_line_has_the_request_id(caplog: Any) -> None:
    with caplog.at_level("INFO", logger="batchd.access"), TestClient(app_on(FineStore())) as client:
        r = client.get("/v1/messages/batches/msgbatch_x/nowhere")
    rid = r.headers["request-id"]
    assert r.json()["request_id"] == rid
    (line,) = [rec.getMessage() for rec in caplog.records if rec.name == "batchd.access"]
    assert f"request_id={rid}" in line and "status=404" in line and "method=GET" in line
