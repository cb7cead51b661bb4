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
JSON = {"content-type": "application/json"}


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
        r = client.request(method, path, content=BODY if method == "POST" else None, headers=JSON)
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
            method, path, headers={"x-api-key": "bad", **JSON}, content=BODY if method == "POST" else None
        )
    assert r.status_code == 401
    assert r.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}


def test_too_large_before_reading_when_declared() -> None:
    app = app_on(BrokenStore(RuntimeError()), config.Settings(max_batch_bytes=10))
    with TestClient(app) as client:
        r = client.post("/v1/messages/batches", content=BODY, headers=JSON)
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"


# Every path of the API, with the methods it serves (GET brings HEAD; every path answers OPTIONS).
PATHS = {
    "/v1/messages/batches": "GET, HEAD, POST, OPTIONS",
    "/v1/messages/batches/msgbatch_x": "GET, HEAD, DELETE, OPTIONS",
    "/v1/messages/batches/msgbatch_x/cancel": "POST, OPTIONS",
    "/v1/messages/batches/msgbatch_x/results": "GET, HEAD, OPTIONS",
    "/v1/messages": "POST, OPTIONS",
    "/v1/models": "GET, HEAD, OPTIONS",
    "/v1/models/claude-sonnet-4-5": "GET, HEAD, OPTIONS",
    "/openapi.json": "GET, HEAD, OPTIONS",
    "/health": "GET, HEAD, OPTIONS",
    "/metrics": "GET, HEAD, OPTIONS",
}


@pytest.mark.parametrize(("path", "allow"), PATHS.items())
def test_options_and_405_name_every_method_of_the_path(path: str, allow: str) -> None:
    settings = config.Settings(api_keys={"good": "w"})  # neither needs a key: they only name methods
    app = app_on(BrokenStore(RuntimeError("must not be reached")), settings)
    with TestClient(app) as client:
        r = client.options(path)
        assert r.status_code == 204, r.text
        assert r.headers["allow"] == allow
        assert r.headers["request-id"].startswith("req_")
        served = set(allow.split(", "))
        for method in sorted({"GET", "POST", "DELETE", "PUT", "PATCH"} - served):
            r = client.request(method, path)
            assert r.status_code == 405, (method, r.text)
            assert r.headers["allow"] == allow
            assert r.json()["error"] == {
                "type": "invalid_request_error",
                "message": f"Method {method} is not allowed on {path}",
            }


def test_options_on_an_unknown_path_is_a_404() -> None:
    with TestClient(app_on(BrokenStore(RuntimeError()))) as client:
        r = client.options("/v1/nowhere")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("path", ["/v1/messages/batches", "/v1/messages"])
async def test_a_client_leaving_mid_body_is_a_499_without_a_traceback(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The ASGI app as the server drives it: half a body, then the client's disconnect."""
    app = app_on(BrokenStore(RuntimeError("must not be reached")))
    events = [
        {"type": "http.request", "body": b'{"requests": [', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return events.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
    }
    with caplog.at_level("INFO"):
        await app(scope, receive, send)  # raises nothing: nothing failed here
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 499
    assert [r.levelname for r in caplog.records] == ["INFO"]
    (line,) = [r.getMessage() for r in caplog.records]
    assert f"path={path}" in line and "status=499 " in line and 'note="client closed request"' in line
    assert not any(r.exc_info for r in caplog.records)
    metrics = app.state.services.metrics
    assert (
        metrics.registry.get_sample_value(
            "batchd_http_requests_total", {"method": "POST", "route": path, "status": "499"}
        )
        == 1
    )
