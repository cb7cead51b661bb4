"""The request guards (api/guard.py): Host names, the Origin of state-changing requests, JSON bodies."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from batchd import config, exceptions
from batchd.api.services import Services
from batchd.app import create_app

CREATE = "/v1/messages/batches"
BODY = b'{"requests":[{"custom_id":"a","params":{}}]}'
JSON = {"content-type": "application/json"}


class Recorder:
    """A stand-in store that records which operations were reached. /health's read and write
    probe succeed; anything else then fails (503)."""

    def __init__(self) -> None:
        self.reached: list[str] = []

    def __getattr__(self, name: str) -> Any:
        async def record(*args: Any, **kwargs: Any) -> Any:
            self.reached.append(name)
            if name == "list_batches":
                return [], False
            if name == "probe_write":
                return None
            raise exceptions.StoreUnavailable()

        return record


def client_for(settings: config.Settings, host: str = "127.0.0.1:8080") -> tuple[TestClient, Recorder]:
    store = Recorder()
    app = create_app(Services(settings=settings, store=store))  # type: ignore[arg-type]
    return TestClient(app, base_url=f"http://{host}"), store


# -- Host: DNS rebinding ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:8080", "127.0.0.1", "127.5.6.7:1", "localhost:8080", "LOCALHOST", "[::1]:8080", "[::1]",
     "[::ffff:127.0.0.1]:80", "localhost."],
)  # fmt: skip
def test_loopback_names_are_served_without_keys(host: str) -> None:
    client, store = client_for(config.Settings(), host)
    assert client.get("/health").status_code == 200
    assert "list_batches" in store.reached


@pytest.mark.parametrize(
    "host",
    ["rebind.example:8080", "127.attacker.invalid", "127.0.0.1.nip.io:8080", "localhost.evil.example",
     "10.0.0.5:8080", "0.0.0.0:8080", "[::2]:8080", "::1", "127.0.0.1:x", "[::1", "a b"],
)  # fmt: skip
def test_other_host_names_get_403_without_keys(host: str) -> None:
    client, store = client_for(config.Settings())
    for method, path in [("GET", "/health"), ("GET", "/"), ("GET", CREATE), ("POST", CREATE)]:
        r = client.request(method, path, headers={"host": host, **JSON}, content=BODY)
        assert r.status_code == 403, (method, path, r.text)
        error = r.json()["error"]
        assert error["type"] == "permission_error" and "allowed_hosts" in error["message"]
        assert r.json()["request_id"] == r.headers["request-id"]
    assert store.reached == []


def test_allowed_hosts_and_the_public_url_host_are_served() -> None:
    settings = config.load(
        environ={"BATCHD_ALLOWED_HOSTS": "batchd.lan, [FD00::1]", "BATCHD_PUBLIC_URL": "https://b.example/x"}
    )
    client, _ = client_for(settings)
    for host in ["batchd.lan", "BATCHD.LAN:9000", "[fd00::1]:8080", "b.example", "127.0.0.1:8080"]:
        assert client.get("/health", headers={"host": host}).status_code == 200, host
    assert client.get("/health", headers={"host": "other.lan"}).status_code == 403


def test_with_keys_the_host_is_checked_only_when_allowed_hosts_is_set() -> None:
    keys = {"k": "w"}
    client, _ = client_for(config.Settings(api_keys=keys, host="0.0.0.0"))
    assert client.get("/health", headers={"host": "batchd.example"}).status_code == 200
    client, _ = client_for(config.Settings(api_keys=keys, host="127.0.0.1"))
    assert client.get("/health", headers={"host": "batchd.example"}).status_code == 200
    client, _ = client_for(config.Settings(api_keys=keys, allowed_hosts=("batchd.example",)))
    assert client.get("/health", headers={"host": "batchd.example"}).status_code == 200
    assert client.get("/health", headers={"host": "localhost:1"}).status_code == 200
    assert client.get("/health", headers={"host": "rebind.example"}).status_code == 403


def test_a_bad_allowed_host_stops_the_settings() -> None:
    with pytest.raises(exceptions.ConfigError, match="BATCHD_ALLOWED_HOSTS: not a host name"):
        config.load(environ={"BATCHD_ALLOWED_HOSTS": "http://batchd.lan/"})


# -- JSON bodies --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
     "multipart/form-data; boundary=x", "application/jsonx", "application/json-seq"],
)  # fmt: skip
def test_api_bodies_must_be_json(content_type: str | None) -> None:
    client, store = client_for(config.Settings())
    headers = {} if content_type is None else {"content-type": content_type}
    for path in [CREATE, "/v1/messages", CREATE + "/msgbatch_x/cancel"]:
        r = client.post(path, content=BODY, headers=headers)
        assert r.status_code == 415, (path, r.text)
        error = r.json()["error"]
        assert error["type"] == "invalid_request_error" and "application/json" in error["message"]
    assert store.reached == []


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON; charset=utf-8"])
def test_json_bodies_reach_the_view(content_type: str) -> None:
    client, store = client_for(config.Settings())
    assert client.post(CREATE, content=BODY, headers={"content-type": content_type}).status_code == 503
    assert store.reached == ["create_batch"]


def test_the_files_upload_is_the_one_multipart_body() -> None:
    client, _ = client_for(config.Settings())
    form = {"content-type": "multipart/form-data; boundary=x"}
    body = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhi\r\n--x--\r\n'
    assert client.post("/v1/files", content=body, headers=form).status_code != 415  # reaches the view
    assert client.put("/v1/files", content=body, headers=form).status_code == 405
    assert client.post("/v1/files", content=body, headers={"content-type": "text/plain"}).status_code == 415
    r = client.post("/v1/files", content=body, headers={**form, "origin": "https://evil.example"})
    assert r.status_code == 403  # a cross-site form is refused before any body is read


def test_a_chunked_body_must_be_json_too() -> None:
    client, store = client_for(config.Settings())
    r = client.post(CREATE, content=iter([BODY]), headers={"content-type": "text/plain"})
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 415 and store.reached == []


def test_a_post_without_a_body_needs_no_content_type() -> None:
    client, store = client_for(config.Settings())
    assert client.post(CREATE + "/msgbatch_x/cancel").status_code == 503  # the SDK's cancel
    assert store.reached == ["cancel_batch"]


# -- Origin ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "fetch_site"),
    [("null", None), ("http://127.0.0.1:9999", None), ("https://127.0.0.1:8080", None),
     ("http://localhost:8080", None), ("http://evil.example", None), ("garbage", None),
     (None, "cross-site"), (None, "same-site")],
)  # fmt: skip
def test_state_changing_requests_from_other_origins_get_403(
    origin: str | None, fetch_site: str | None
) -> None:
    client, store = client_for(config.Settings())
    headers = {k: v for k, v in (("origin", origin), ("sec-fetch-site", fetch_site)) if v}
    for method, path in [("POST", CREATE), ("POST", CREATE + "/b/cancel"), ("DELETE", CREATE + "/b"),
                         ("POST", "/batches/b/cancel"), ("POST", "/login"), ("POST", "/logout")]:  # fmt: skip
        r = client.request(method, path, headers={**headers, **JSON}, content=BODY)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"]["type"] == "permission_error"
    assert store.reached == []
    # Reading is not acting: a GET from anywhere is answered (the browser keeps the answer from the page).
    assert client.get("/health", headers=headers).status_code == 200


def test_requests_from_this_servers_origins_are_served() -> None:
    settings = config.Settings(public_url="https://batchd.example")
    client, store = client_for(settings)
    for origin in ["http://127.0.0.1:8080", "HTTP://127.0.0.1:8080", "https://batchd.example:443"]:
        r = client.post(
            CREATE, content=BODY, headers={"origin": origin, "sec-fetch-site": "same-origin", **JSON}
        )
        assert r.status_code == 503, (origin, r.text)
    assert store.reached == ["create_batch"] * 3
    downgraded = {"origin": "http://batchd.example", **JSON}  # public_url's host, but not its scheme
    assert client.post(CREATE, content=BODY, headers=downgraded).status_code == 403
