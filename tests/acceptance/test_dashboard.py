"""The dashboard over HTTP: pages, JSON twins, pagination, search, actions, auth, sessions and their
security headers; health and metrics."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import make_client, simple_request, wait_ended
from tests.acceptance.server import ServerProcess

COOKIE = "batchd_session"


def token(http: httpx.Client, path: str = "/login") -> str:
    """The CSRF token of the page at `path`'s forms (the page sets the cookie it derives from)."""
    return token_in(http.get(path).text)


def token_in(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found[1]


def log_in(http: httpx.Client, key: str) -> httpx.Response:
    return http.post("/login", data={"key": key, "next": "/", "csrf_token": token(http)})


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

        # Delete from the dashboard, with the page's token; then the batch is gone for the API too.
        assert http.post(f"/batches/{batch.id}/delete").status_code == 403  # no token
        assert http.post(f"/batches/{batch.id}/delete", data={"csrf_token": "forged"}).status_code == 403
        form = {"csrf_token": token(http, f"/batches/{batch.id}")}
        assert http.post(f"/batches/{batch.id}/delete", data=form).status_code == 303
        assert http.get(f"/v1/messages/batches/{batch.id}").status_code == 404
        delete = f"/batches/{batch.id}/delete"
        assert http.post(delete, data=form, headers={"origin": "https://evil.example"}).status_code == 403
        opaque = http.post(delete, data=form, headers={"origin": "null"})
        assert opaque.status_code == 403 and opaque.json()["error"]["type"] == "permission_error"


def test_dashboard_asks_for_a_key_once(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(api_keys="k-a:team-a,k-b:team-b")
    with make_client(srv.base_url, default_headers={"x-api-key": "k-a"}) as client:
        batch = client.messages.batches.create(requests=[simple_request("one")])  # type: ignore[list-item]
    with httpx.Client(base_url=srv.base_url, timeout=30) as http:
        assert http.get("/").status_code == 303
        assert http.get("/", params={"format": "json"}).status_code == 401
        form = {"csrf_token": token(http)}
        assert http.post("/login", data={"key": "nope", "next": "/", **form}).status_code == 401
        login = http.post("/login", data={"key": "k-a", "next": f"/batches/{batch.id}", **form})
        assert login.status_code == 303 and login.headers["location"] == f"/batches/{batch.id}"
        assert "httponly" in login.headers["set-cookie"].lower()
        assert "k-a" not in login.headers["set-cookie"]  # a session id, never the key
        assert http.get(f"/batches/{batch.id}").status_code == 200  # the cookie is sent from now on
        form = {"csrf_token": token(http)}  # a new session: a new token
        away = http.post("/login", data={"key": "k-a", "next": "//evil.example/", **form})
        assert away.headers["location"] == "/"
    with httpx.Client(base_url=srv.base_url, timeout=30) as other:
        assert log_in(other, "k-b").status_code == 303
        assert other.get(f"/batches/{batch.id}").status_code == 404  # another workspace's batch
    with httpx.Client(base_url=srv.base_url, timeout=30, cookies={"batchd_key": "k-a"}) as old:
        # The cookie of older versions, which held the key itself, is not read; the login page
        # it leads to deletes it.
        assert old.get(f"/batches/{batch.id}").status_code == 303
        assert any(c.startswith('batchd_key="";') for c in old.get("/login").headers.get_list("set-cookie"))


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


SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def test_every_dashboard_page_carries_the_security_headers(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        missing = "/batches/msgbatch_missing"
        for path in ["/", "/?format=json", missing, missing + "?format=json", "/login"]:
            r = http.get(path)
            policy = r.headers["content-security-policy"]
            assert "default-src 'none'" in policy and "script-src 'self'" in policy, path
            assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy, path
            assert {k: r.headers.get(k) for k in SECURITY_HEADERS} == SECURITY_HEADERS, path
        assert http.get("/static/app.js").headers["x-content-type-options"] == "nosniff"
        html = http.get("/").text
        assert "<script>" not in html and "style=" not in html  # nothing inline for the policy to refuse


def sessions_in(srv: ServerProcess) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{srv.data_dir / 'batchd.db'}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT * FROM sessions").fetchall()
    finally:
        conn.close()


def test_a_session_is_stored_as_a_digest_and_ends_at_logout(
    server_factory: Callable[..., ServerProcess],
) -> None:
    srv = server_factory(api_keys="key-of-team-a:team-a")
    with httpx.Client(base_url=srv.base_url, timeout=30) as http:
        assert log_in(http, "key-of-team-a").status_code == 303
        session_id = http.cookies[COOKIE]
        ((digest, workspace, proof, created, expires, seen, revoked),) = sessions_in(srv)
        assert digest == hashlib.sha256(session_id.encode()).hexdigest() and workspace == "team-a"
        assert expires - created == 7 * 86400 and seen == created and revoked is None
        assert session_id not in proof and "key-of-team-a" not in proof
        assert http.get("/").status_code == 200
        logout = http.post("/logout", data={"csrf_token": token(http, "/")})
        assert logout.status_code == 303 and logout.headers["location"] == "/login"
        assert f'{COOKIE}="";' in logout.headers["set-cookie"]
    (row,) = sessions_in(srv)
    assert row[-1] is not None  # revoked
    with httpx.Client(base_url=srv.base_url, timeout=30, cookies={COOKIE: session_id}) as stolen:
        assert stolen.get("/").status_code == 303  # the id is worth nothing after logout


def test_a_session_ends_when_unused_or_too_old(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(api_keys="k:w", session_idle="2s", session_lifetime="5s")
    with httpx.Client(base_url=srv.base_url, timeout=30) as used, httpx.Client(base_url=srv.base_url) as idle:
        start = time.monotonic()
        assert log_in(used, "k").status_code == 303 and log_in(idle, "k").status_code == 303
        session_id = used.cookies[COOKIE]

        def at(seconds: float) -> None:
            time.sleep(max(0.0, start + seconds - time.monotonic()))

        for second in (1, 2, 3, 4):  # used every second: alive past the idle time
            at(second)
            assert used.get("/").status_code == 200, second
            if second == 2:
                at(2.6)
                assert idle.get("/").status_code == 303  # unused for 2.6 s
        at(5.3)
        # Used, but 5 s old. Sent by hand: the browser's copy of the cookie has expired too (its
        # Max-Age), and the server must refuse the id all the same.
        assert httpx.get(srv.base_url, headers={"cookie": f"{COOKIE}={session_id}"}).status_code == 303


def test_a_session_ends_when_its_key_leaves_the_configuration(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = ServerProcess(data, {"BATCHD_API_KEYS": "k-a:team,k-b:team"}).start()
    try:
        ids = {}
        for key in ("k-a", "k-b"):
            with httpx.Client(base_url=first.base_url, timeout=30) as http:
                assert log_in(http, key).status_code == 303
                ids[key] = http.cookies[COOKIE]
    finally:
        first.stop()

    def status(env: str, key: str) -> int:
        srv = ServerProcess(data, {"BATCHD_API_KEYS": env}).start()
        try:
            with httpx.Client(base_url=srv.base_url, timeout=30, cookies={COOKIE: ids[key]}) as http:
                return http.get("/").status_code
        finally:
            srv.stop()

    assert status("k-a:team,k-b:team", "k-a") == 200  # sessions outlive a restart
    assert status("k-b:team", "k-a") == 303  # k-a removed
    assert status("k-b:team", "k-b") == 200
    assert status("k-b:other", "k-b") == 303  # k-b now opens another workspace


def test_login_attempts_are_limited_per_client(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(api_keys="right-key:w")
    with httpx.Client(base_url=srv.base_url, timeout=30) as http:
        form = {"csrf_token": token(http), "next": "/"}
        start = time.monotonic()
        answers = [http.post("/login", data={**form, "key": f"guess-{i}"}) for i in range(200)]
        elapsed = time.monotonic() - start
        statuses = [r.status_code for r in answers]
        # 10 at once, then one every 6 s: of 200 guesses sent as fast as they go, ~10 are tried.
        tried = statuses.count(401)
        assert 10 <= tried <= 10 + int(elapsed / 6) and statuses.count(429) == 200 - tried, statuses
        assert statuses[:10] == [401] * 10
        refused = http.post("/login", data={**form, "key": "right-key"})  # the right key waits too
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 6
        assert "Too many login attempts" in refused.text


def test_the_cookie_is_secure_when_browsers_use_https(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(api_keys="k:w", public_url="https://batchd.example")
    with httpx.Client(base_url=srv.base_url, timeout=30) as http:
        page = http.get("/login")
        assert "; secure" in page.headers["set-cookie"].lower()
        # httpx keeps a Secure cookie from http://: send it by hand, as a browser on https would.
        anchor = page.cookies[COOKIE]
        form = {"key": "k", "next": "/", "csrf_token": token_in(page.text)}
        login = http.post("/login", data=form, headers={"cookie": f"{COOKIE}={anchor}"})
    assert login.status_code == 303
    cookie = login.headers["set-cookie"].lower()
    attributes = {part.strip() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite=lax", "path=/", "max-age=604800"} <= attributes, cookie


@pytest.mark.postgres
def test_a_session_works_on_every_process_of_a_fleet(
    server_factory: Callable[..., ServerProcess], database: str
) -> None:
    one = server_factory(api_keys="k:w", database_url=database)
    two = server_factory(api_keys="k:w", database_url=database)
    with httpx.Client(base_url=one.base_url, timeout=30) as http:
        assert log_in(http, "k").status_code == 303
        session_id = http.cookies[COOKIE]
    with httpx.Client(base_url=two.base_url, timeout=30, cookies={COOKIE: session_id}) as other:
        assert other.get("/").status_code == 200  # made on one process, good on the other
        assert other.post("/logout", data={"csrf_token": token(other, "/")}).status_code == 303
    with httpx.Client(base_url=one.base_url, timeout=30, cookies={COOKIE: session_id}) as http:
        assert http.get("/").status_code == 303  # and logged out on both
