"""`POST /v1/messages` and `GET /v1/models` in-process, on the simulator route."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from starlette.testclient import TestClient

from batchd import app as api
from batchd.api.anthropic.messages import realtime
from batchd.api.services import Services
from batchd.engine.router import Router
from tests.unit.conftest import SettingsFactory

BODY = {"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "Hello there"}]}


@pytest.fixture
def client(settings_factory: SettingsFactory) -> Iterator[TestClient]:
    settings = settings_factory(
        api_keys="k1:team",
        routes='[{"model": "exact"}, {"model": "g-*"}, {"model": "g-shadowed"}, {"model": "second"}]',
    )
    services = Services(settings=settings, store=None, router=Router.from_settings(settings))  # type: ignore[arg-type]
    app = api.create_app(services)
    with TestClient(app, headers={"x-api-key": "k1"}) as c:
        yield c


def test_auth_is_enforced(client: TestClient) -> None:
    for method, path in (("POST", "/v1/messages"), ("GET", "/v1/models"), ("GET", "/v1/models/x")):
        r = client.request(method, path, headers={"x-api-key": "wrong"}, json=BODY)
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


def test_message(client: TestClient) -> None:
    r = client.post("/v1/messages", json=BODY)
    assert r.status_code == 200 and r.headers["request-id"].startswith("req_")
    assert r.json()["type"] == "message" and r.json()["model"] == "m"
    assert r.json()["usage"]["service_tier"] == "standard"  # batch results say "batch"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "The request body is not valid JSON"),
        (b"[1]", "The request body must be a JSON object"),
        (orjson.dumps({**BODY, "stream": "yes"}), "stream: Input should be a valid boolean"),
        (orjson.dumps({**BODY, "max_tokens": 0}), "max_tokens: Input should be greater than or equal to 1"),
    ],
)
def test_bad_bodies(client: TestClient, body: bytes, message: str) -> None:
    r = client.post("/v1/messages", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert r.json()["error"]["message"].startswith(message)


def test_backend_error_passes_status_and_retry_headers(client: TestClient) -> None:
    body = {**BODY, "messages": [{"role": "user", "content": "hi @sim:error=overloaded"}]}
    r = client.post("/v1/messages", json=body)
    assert r.status_code == 529 and r.json()["error"]["type"] == "overloaded_error"
    assert r.headers["x-should-retry"] == "false"  # the simulator's @sim:error is final
    body = {**BODY, "messages": [{"role": "user", "content": "hi @sim:fail=429"}]}
    r = client.post("/v1/messages", json=body)
    assert r.status_code == 429 and r.headers["retry-after"] == "0"


def test_stream_events(client: TestClient) -> None:
    body = {**BODY, "stream": True, "thinking": {"type": "enabled"}, "max_tokens": 2000}
    with client.stream("POST", "/v1/messages", json=body) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line[7:] for line in r.iter_lines() if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-2:] == ["message_delta", "message_stop"]
    assert events[1:5] == [
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
    ]


def test_models(client: TestClient) -> None:
    # Exact names only: a glob is no model name, nor is the simulator's catch-all; a name an
    # earlier glob takes is not this route's.
    page = client.get("/v1/models").json()
    assert [m["id"] for m in page["data"]] == ["exact", "second"]
    assert (page["first_id"], page["last_id"], page["has_more"]) == ("exact", "second", False)
    page = client.get("/v1/models", params={"limit": 1}).json()
    assert [m["id"] for m in page["data"]] == ["exact"] and page["has_more"] is True
    page = client.get("/v1/models", params={"after_id": "exact"}).json()
    assert [m["id"] for m in page["data"]] == ["second"] and page["has_more"] is False
    assert client.get("/v1/models/g-1").json()["display_name"] == "g-1 → simulated (route g-*)"
    assert client.get("/v1/models/exact").json()["display_name"] == "exact → simulated"


def test_realtime_tier_and_fields() -> None:
    bare = {"id": "m", "content": [], "usage": {"input_tokens": 1, "output_tokens": 1}}
    out = realtime(bare)
    assert out["usage"]["service_tier"] == "standard" and "service_tier" not in bare["usage"]
    assert out["stop_details"] is None and out["container"] is None
    batch = realtime({**bare, "usage": {"service_tier": "batch"}, "stop_details": {"type": "refusal"}})
    assert batch["usage"]["service_tier"] == "standard" and batch["stop_details"] == {"type": "refusal"}
    assert realtime({**bare, "usage": {"service_tier": "priority"}})["usage"]["service_tier"] == "priority"
