"""The one error renderer: every failure, on every route, leaves as Anthropic's envelope."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from batchd import config, exceptions
from tests.unit.conftest import app_on

ROUTES = [
    ("POST", "/v1/messages/batches"),
    ("GET", "/v1/messages/batches"),
    ("GET", "/v1/messages/batches/msgbatch_x"),
    ("DELETE", "/v1/messages/batches/msgbatch_x"),
    ("POST", "/v1/messages/batches/msgbatch_x/cancel"),
    ("GET", "/v1/messages/batches/msgbatch_x/results"),
]


class BrokenStore:
    """Every operation fails with the exception it was given."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> Any:
            raise self.exc

        if name == "iter_results":
            return self._iter
        return fail

    async def _iter(self, *args: Any) -> Any:
        raise self.exc
        yield b""  # pragma: no cover - makes this an async generator


BODY = b'{"requests":[{"custom_id":"a","params":{}}]}'


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    ("exc", "status", "error_type"),
    [
        (RuntimeError("boom"), 500, "api_error"),
        (exceptions.StoreUnavailable(), 503, "api_error"),
        (exceptions.BatchNotFound(), 404, "not_found_error"),
        (exceptions.InvalidBatchState(), 400, "invalid_request_error"),
    ],
)
def test_envelope_on_every_route(
    method: str, path: str, exc: Exception, status: int, error_type: str
) -> None:
    app = app_on(BrokenStore(exc))
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.request(method, path, content=BODY if method == "POST" else None)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["request_id"] == r.headers["request-id"]
    assert "boom" not in body["error"]["message"]  # internals never leak into the message


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_auth_is_checked_first_on_every_route(method: str, path: str) -> None:
    settings = config.Settings(api_keys={"good": "w"})
    app = app_on(BrokenStore(RuntimeError("must not be reached")), settings)
    with TestClient(app) as client:
        r = client.request(
            method, path, headers={"x-api-key": "bad"}, content=BODY if method == "POST" else None
        )
    assert r.status_code == 401
    assert r.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}


def test_too_large_before_reading_when_declared() -> None:
    app = app_on(BrokenStore(RuntimeError()), config.Settings(max_batch_bytes=10))
    with TestClient(app) as client:
        r = client.post("/v1/messages/batches", content=BODY)
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"
