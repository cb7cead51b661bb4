"""The dashboard over HTTP: pages, JSON twins, pagination, search, actions, auth; health and metrics."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.acceptance.conftest import make_client, simple_request, wait_ended
from tests.acceptance.server import ServerProcess


def test_list_and_batch_pages(server: ServerProcess) -> None:
    rows = [simple_request(f"p{i:03d}") for i in range(60)]
    rows[7] = simple_request("p007", "no luck @sim:error=rate_limit")
    with make_client(server.base_url) as client:
        batch = client.messages.batches.create(requests=rows)  # type: ignore[arg-type]
        wait_ended(client, batch.id, 60)
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        page = http.get("/")
        assert (
            page.status_code == 200 and batch.id in page.text and "text/html" in page.headers["content-type"]
        )
        assert page.headers["request-id"].startswith("req_")
        listed = http.get("/", params={"format": "json"}).json()
        assert batch.id in [b["id"] for b in listed["batches"]]
        ended = http.get("/", params={"format": "json", "status": "ended"}).json()
        assert all(b["processing_status"] == "ended" for b in ended["batches"])
        assert http.get("/", params={"format": "json", "status": "bogus"}).status_code == 400

        first = http.get(f"/batches/{batch.id}", params={"format": "json"}).json()
        assert first["batch"]["request_counts"]["errored"] == 1
        assert [r["custom_id"] for r in first["results"]] == [f"p{i:03d}" for i in range(50)]
        assert first["next_after"] == 49
        second = http.get(f"/batches/{batch.id}", params={"format": "json", "after": 49}).json()
        assert [r["index"] for r in second["results"]] == list(range(50, 60)) and second["next_after"] is None

        found = http.get(f"/batches/{batch.id}", params={"format": "json", "custom_id": "p007"}).json()
        (hit,) = found["results"]
        assert hit["result_type"] == "errored" and hit["error"]["type"] == "rate_limit_error"
        errored = http.get(f"/batches/{batch.id}", params={"format": "json", "type": "errored"}).json()
        assert [r["custom_id"] for r in errored["results"]] == ["p007"]

        html = http.get(f"/batches/{batch.id}", params={"custom_id": "p007"}).text
        assert "rate_limit_error" in html and "Delete batch" in html

        missing = http.get("/batches/msgbatch_missing")
        assert missing.status_code == 404 and "not found" in missing.text and "<html" in missing.text
        envelope = http.get("/batches/msgbatch_missing", params={"format": "json"})
        assert envelope.status_code == 404 and envelope.json()["error"]["type"] == "not_found_error"

        # Delete from the dashboard, then the batch is gone for the API too.
        assert http.post(f"/batches/{batch.id}/delete").status_code == 303
        assert http.get(f"/v1/messages/batches/{batch.id}").status_code == 404
        foreign = http.post(f"/batches/{batch.id}/delete", headers={"origin": "https://evil.example"})
        assert foreign.status_code == 403


def test_dashboard_asks_for_a_key_once(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(api_keys="k-a:team-a,k-b:team-b")
    with make_client(srv.base_url, default_headers={"x-api-key": "k-a"}) as client:
        batch = client.messages.batches.create(requests=[simple_request("one")])  # type: ignore[list-item]
    with httpx.Client(base_url=srv.base_url, timeout=30) as http:
        assert http.get("/").status_code == 303
        assert http.get("/", params={"format": "json"}).status_code == 401
        assert http.post("/login", data={"key": "nope", "next": "/"}).status_code == 401
        login = http.post("/login", data={"key": "k-a", "next": f"/batches/{batch.id}"})
        assert login.status_code == 303 and login.headers["location"] == f"/batches/{batch.id}"
        assert "httponly" in login.headers["set-cookie"].lower()
        assert http.get(f"/batches/{batch.id}").status_code == 200  # the cookie is sent from now on
        assert http.post("/login", data={"key": "k-a", "next": "//evil.example/"}).headers["location"] == "/"
    with httpx.Client(base_url=srv.base_url, timeout=30, cookies={"batchd_key": "k-b"}) as other:
        assert other.get(f"/batches/{batch.id}").status_code == 404  # another workspace's batch


def test_health_and_metrics(server: ServerProcess) -> None:
    with make_client(server.base_url) as client:
        batch = client.messages.batches.create(
            requests=[simple_request("m1"), simple_request("m2", "@sim:fail=529x1")]  # type: ignore[list-item]
        )
        wait_ended(client, batch.id, 2)
    health = httpx.get(server.base_url + "/health", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["limits"]["max_requests"] == 100_000
    text = httpx.get(server.base_url + "/metrics", timeout=30).text
    assert 'batchd_requests_total{model="claude-sonnet-4-5-20250929",result="succeeded"}' in text
    assert "batchd_backend_latency_seconds_bucket" in text
    assert 'batchd_retries_total{error_type="overloaded_error"}' in text
    assert "batchd_batch_create_requests_bucket" in text and "batchd_inflight_requests" in text
    assert 'batchd_http_requests_total{method="POST",route="/v1/messages/batches",status="200"}' in text
