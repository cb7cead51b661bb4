"""Metrics: per-app registries, bounded labels, /metrics and /health over the ASGI app."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from batchd import config, exceptions, metrics
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
        raise exceptions.StoreUnavailable("the database failed: disk I/O error")


class FineStore:
    async def list_batches(self, *args: Any, **kwargs: Any) -> Any:
        return [], False


def test_health_reports_the_store() -> None:
    with TestClient(app_on(FineStore())) as client:
        r = client.get("/health")
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert r.json()["limits"] == {"max_requests": 100_000, "max_batch_bytes": 256 * 1024 * 1024}
    with TestClient(app_on(DeadStore())) as client:
        r = client.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"


def test_metrics_endpoint_counts_requests_and_honours_keys() -> None:
    app = app_on(FineStore())
    with TestClient(app) as client:
        client.get("/health")
        r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert 'batchd_http_requests_total{method="GET",route="/health",status="200"} 1.0' in r.text
    keyed = app_on(FineStore(), config.Settings(api_keys={"k": "w"}))
    with TestClient(keyed) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"x-api-key": "k"}).status_code == 200


def test_access_log_line_has_the_request_id(caplog: Any) -> None:
    app = app_on(FineStore())
    with caplog.at_level("INFO", logger="batchd.access"), TestClient(app) as client:
        r = client.get("/v1/messages/batches/msgbatch_x/nowhere")
    rid = r.headers["request-id"]
    assert r.json()["request_id"] == rid
    (line,) = [rec.getMessage() for rec in caplog.records if rec.name == "batchd.access"]
    assert f"request_id={rid}" in line and "status=404" in line and "method=GET" in line
