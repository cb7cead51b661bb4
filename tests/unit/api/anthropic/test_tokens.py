"""`POST /v1/messages/count_tokens` in-process, on the simulator route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from batchd import app as api
from batchd.api.services import Services
from batchd.engine.router import Router
from tests.unit.conftest import SettingsFactory

BODY = {"model": "m", "messages": [{"role": "user", "content": "count these four words"}]}


def client_for(settings_factory: SettingsFactory, **settings: str) -> TestClient:
    s = settings_factory(api_keys="k1:team", **settings)
    services = Services(settings=s, store=None, router=Router.from_settings(s))  # type: ignore[arg-type]
    # anthropic-version as the SDK sends it: strict mode requires it.
    return TestClient(
        api.create_app(services), headers={"x-api-key": "k1", "anthropic-version": "2023-06-01"}
    )


@pytest.fixture
def client(settings_factory: SettingsFactory) -> Iterator[TestClient]:
    with client_for(settings_factory) as c:
        yield c


def test_count_is_the_simulators_input_tokens(client: TestClient) -> None:
    created = client.post("/v1/messages", json={**BODY, "max_tokens": 10}).json()
    for path in ("/v1/messages/count_tokens", "/v1/messages/count_tokens?beta=true"):
        r = client.post(path, json=BODY)
        assert r.status_code == 200 and r.headers["request-id"].startswith("req_")
        assert r.json() == {"input_tokens": created["usage"]["input_tokens"]}


def test_lenient_mode_counts_a_create_body(client: TestClient) -> None:
    r = client.post("/v1/messages/count_tokens", json={**BODY, "max_tokens": 5, "temperature": 0.1})
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[", "The request body is not valid JSON"),
        (b"{}", "model: Field required"),
        (b'{"model": "m", "messages": []}', "messages: List should have at least 1 item"),
    ],
)
def test_bad_bodies(client: TestClient, body: bytes, message: str) -> None:
    r = client.post("/v1/messages/count_tokens", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert r.json()["error"]["message"].startswith(message), r.json()
    assert r.json()["request_id"] == r.headers["request-id"]


def test_auth_is_enforced(client: TestClient) -> None:
    r = client.post("/v1/messages/count_tokens", json=BODY, headers={"x-api-key": "nope"})
    assert r.status_code == 401


def test_strict_mode_refuses_max_tokens(settings_factory: SettingsFactory) -> None:
    with client_for(settings_factory, strict="true") as c:
        r = c.post("/v1/messages/count_tokens", json={**BODY, "max_tokens": 5})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "max_tokens: Extra inputs are not permitted"


def test_a_backend_failure_keeps_its_status(client: TestClient) -> None:
    bad_pdf: dict[str, Any] = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "bm90IGEgcGRm"},
    }
    body = {**BODY, "messages": [{"role": "user", "content": [bad_pdf]}]}
    r = client.post("/v1/messages/count_tokens", json=body)
    assert r.status_code == 400 and r.headers["x-should-retry"] == "false"
