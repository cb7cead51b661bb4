"""/v1/webhooks and the Idempotency-Key header: auth first, errors in the one envelope, input checks."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from batchd import config, exceptions
from tests.unit.api.test_errors import JSON, BrokenStore
from tests.unit.conftest import app_on

ROUTES = [
    ("POST", "/v1/webhooks/endpoints"),
    ("GET", "/v1/webhooks/endpoints"),
    ("DELETE", "/v1/webhooks/endpoints/whep_x"),
    ("GET", "/v1/webhooks/deliveries"),
    ("POST", "/v1/webhooks/events/evt_x/redeliver"),
]
ENDPOINT = b'{"url": "https://hooks.example/batchd"}'


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_auth_is_checked_first(method: str, path: str) -> None:
    app = app_on(BrokenStore(RuntimeError("must not be reached")), config.Settings(api_keys={"good": "w"}))
    with TestClient(app) as client:
        r = client.request(method, path, headers={"x-api-key": "bad", **JSON}, content=ENDPOINT)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_store_errors_leave_in_the_envelope(method: str, path: str) -> None:
    app = app_on(BrokenStore(exceptions.WebhookNotFound()))
    with TestClient(app) as client:
        r = client.request(method, path, headers=JSON, content=ENDPOINT)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    assert r.json()["request_id"] == r.headers["request-id"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"[]", "url: Field required"),
        (b"{", "JSON object"),
        (b'{"url": "file:///etc/passwd"}', "http:// or https://"),
        (b'{"url": "http://10.0.0.7/hook"}', "private"),
        (b'{"url": "http://[::1]:8080/hook"}', "loopback"),
        (b'{"url": "http://169.254.169.254/"}', "link-local"),
    ],
)
def test_endpoint_urls_are_checked(body: bytes, needle: str) -> None:
    app = app_on(BrokenStore(RuntimeError("must not be reached")))
    with TestClient(app) as client:
        r = client.post("/v1/webhooks/endpoints", headers=JSON, content=body)
    assert r.status_code == 400 and needle in r.json()["error"]["message"], r.text


def test_an_allowed_range_may_be_an_endpoint() -> None:
    class Store:
        async def create_webhook_endpoint(self, endpoint: object) -> None:
            pass

    app = app_on(Store(), config.Settings(webhook_allowed_hosts=("10.0.0.0/8",)))
    with TestClient(app) as client:
        r = client.post("/v1/webhooks/endpoints", headers=JSON, content=b'{"url": "http://10.0.0.7/h"}')
    assert r.status_code == 200 and r.json()["secret"].startswith("whsec_"), r.text


@pytest.mark.parametrize("key", ["", " padded", "x" * 256, "tab\there"])
def test_a_malformed_idempotency_key_is_a_400(key: str) -> None:
    app = app_on(BrokenStore(RuntimeError("must not be reached")))
    body = b'{"requests":[{"custom_id":"a","params":{}}]}'
    with TestClient(app) as client:
        r = client.post("/v1/messages/batches", headers={**JSON, "idempotency-key": key}, content=body)
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["error"]["message"]
