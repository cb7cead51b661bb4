"""Running batchd for several teams (issue 17): managed keys made and revoked with `batchd keys`
over the admin API, quotas per workspace answered as 429 to the official SDK (also under 20
concurrent creates), the admin routes closed to other keys, and strict mode's fidelity."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.acceptance.conftest import simple_request
from tests.acceptance.server import ServerProcess, child_env
from tests.acceptance.test_dashboard import log_in

CONCURRENT = 20
ADMIN_ROUTES = [
    ("GET", "/v1/admin/keys", None),
    ("POST", "/v1/admin/keys", {"workspace": "team-a"}),
    ("DELETE", "/v1/admin/keys/key_whatever", None),
    ("GET", "/v1/admin/usage", None),
]
# Requests stay queued (running) for the whole test: nothing drains a quota behind its back.
HOLD = {"BATCHD_SIM_LATENCY": "120s", "BATCHD_SHUTDOWN_TIMEOUT": "1s"}


def keys_cli(*args: str, admin_key: str | None = None, base_url: str | None = None) -> str:
    """`batchd keys …` / `batchd usage …` in a process of its own; its stdout."""
    env = child_env({"BATCHD_ADMIN_KEY": admin_key} if admin_key else {})
    if base_url:
        env["ANTHROPIC_BASE_URL"] = base_url
    proc = subprocess.run(
        [sys.executable, "-m", "batchd", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def sdk(base_url: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=base_url, api_key=key, max_retries=0, _strict_response_validation=True
    )


def test_keys_lifecycle_admin_routes_and_quotas_on_sqlite(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # Bootstrap: the first admin key is written into the store itself, before the server starts.
    admin = keys_cli("keys", "create", "--admin", "--workspace", "ops", "--data-dir", str(data)).strip()
    assert admin.startswith("bk-") and len(admin) > 40
    quotas = {"team-b": {"queued_requests": 10}, "team-c": {"batches": 5}}
    env = {"BATCHD_MANAGED_KEYS": "true", "BATCHD_QUOTAS": json.dumps(quotas), **HOLD}
    srv = ServerProcess(data, env).start()
    url = srv.base_url
    try:
        made = json.loads(
            keys_cli(
                "keys",
                "create",
                "--workspace",
                "team-a",
                "--name",
                "ci",
                "--json",
                admin_key=admin,
                base_url=url,
            )
        )
        key_a, id_a = made["key"], made["id"]
        assert made["workspace"] == "team-a" and made["admin"] is False and "digest" not in made
        key_b = keys_cli("keys", "create", "--workspace", "team-b", admin_key=admin, base_url=url).strip()
        key_c = keys_cli("keys", "create", "--workspace", "team-c", admin_key=admin, base_url=url).strip()

        # A managed key is a workspace, as an api_keys one.
        with sdk(url, key_a) as a, sdk(url, key_b) as b:
            batch = a.messages.batches.create(requests=[simple_request("q1")])
            with pytest.raises(anthropic.NotFoundError):
                b.messages.batches.retrieve(batch.id)
        page = httpx.get(url + "/?format=json", headers={"x-api-key": key_a})  # the dashboard too
        assert page.status_code == 200 and [x["id"] for x in page.json()["batches"]] == [batch.id]

        # Every admin route: 401 without a key, 403 to a workspace's key (any workspace), open to admin.
        for method, path, body in ADMIN_ROUTES:
            assert httpx.request(method, url + path, json=body).status_code == 401
            for key in (key_a, key_b):
                refused = httpx.request(method, url + path, json=body, headers={"x-api-key": key})
                assert refused.status_code == 403, (method, path)
                assert refused.json()["error"]["type"] == "permission_error"
        listed = keys_cli("keys", "list", "--json", admin_key=admin, base_url=url)
        assert {k["workspace"] for k in json.loads(listed)} == {"ops", "team-a", "team-b", "team-c"}

        # Revoked: refused at once by this process, with the SDK's AuthenticationError; a dashboard
        # session made with the key ends with it.
        with httpx.Client(base_url=url) as browser:
            assert log_in(browser, key_a).status_code == 303
            assert browser.get("/?format=json").status_code == 200
            keys_cli("keys", "revoke", id_a, admin_key=admin, base_url=url)
            assert browser.get("/?format=json").status_code == 401
        with sdk(url, key_a) as a, pytest.raises(anthropic.AuthenticationError):
            a.messages.batches.list()
        short = keys_cli(
            "keys", "create", "--workspace", "team-a", "--expires", "1s", admin_key=admin, base_url=url
        )
        with sdk(url, short.strip()) as a:
            a.messages.batches.list()
            time.sleep(1.2)
            with pytest.raises(anthropic.AuthenticationError):
                a.messages.batches.list()

        # Quotas: at the boundary, then 429 with retry-after, and nothing stored.
        with sdk(url, key_b) as b:
            b.messages.batches.create(requests=[simple_request(f"r{i}") for i in range(6)])
            b.messages.batches.create(requests=[simple_request(f"r{i}") for i in range(4)])
            with pytest.raises(anthropic.RateLimitError) as refused:
                b.messages.batches.create(requests=[simple_request("one-more")])
            assert int(refused.value.response.headers["retry-after"]) > 0
            assert refused.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
            assert len(b.messages.batches.list().data) == 2

        # 20 concurrent creates against a quota of 5 batches: exactly 5 stored.
        async def race() -> list[object]:
            async with anthropic.AsyncAnthropic(base_url=url, api_key=key_c, max_retries=0) as c:
                calls = [c.messages.batches.create(requests=[simple_request("x")]) for _ in range(CONCURRENT)]
                return await asyncio.gather(*calls, return_exceptions=True)

        outcomes = asyncio.run(race())
        assert sum(isinstance(o, anthropic.RateLimitError) for o in outcomes) == CONCURRENT - 5, outcomes
        with sdk(url, key_c) as c:
            assert len(c.messages.batches.list().data) == 5

        usage = {
            u["workspace"]: u for u in json.loads(keys_cli("usage", "--json", admin_key=admin, base_url=url))
        }
        assert usage["team-b"]["queued_requests"] == 10 and usage["team-b"]["quota"]["queued_requests"] == 10
        assert usage["team-c"]["batches"] == 5
        # The metrics are the operator's: admin keys read them (with every workspace's usage), others not.
        metrics = httpx.get(url + "/metrics", headers={"x-api-key": admin})
        assert metrics.status_code == 200
        assert 'batchd_workspace_queued_requests{workspace="team-b"} 10.0' in metrics.text
        assert httpx.get(url + "/metrics", headers={"x-api-key": key_b}).status_code == 403
    finally:
        srv.stop()
    rows = json.loads(keys_cli("keys", "list", "--json", "--data-dir", str(data)))
    assert next(k for k in rows if k["id"] == id_a)["revoked_at"] is not None


def test_strict_mode_requires_the_version_and_holds_counts(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "strict", {"BATCHD_STRICT": "true"}).start()
    try:
        r = httpx.get(srv.base_url + "/v1/messages/batches", headers={"x-api-key": "k"})
        assert r.status_code == 400
        assert r.json()["error"] == {
            "type": "invalid_request_error",
            "message": "anthropic-version: header is required",
        }
        with sdk(srv.base_url, "k") as client:
            batch = client.messages.batches.create(
                requests=[
                    simple_request("fast-1"),
                    simple_request("fast-2"),
                    simple_request("slow", "wait @sim:delay=3"),
                ]
            )
            time.sleep(1.0)
            running = client.messages.batches.retrieve(batch.id)
            assert running.processing_status == "in_progress"
            assert running.request_counts.processing == 3 and running.request_counts.succeeded == 0
            # The dashboard keeps live counts.
            live = httpx.get(f"{srv.base_url}/batches/{batch.id}?format=json").json()["batch"]
            assert live["request_counts"]["succeeded"] == 2
            deadline = time.monotonic() + 20
            while (ended := client.messages.batches.retrieve(batch.id)).processing_status != "ended":
                assert time.monotonic() < deadline
                time.sleep(0.2)
            assert ended.request_counts.succeeded == 3 and ended.request_counts.processing == 0
    finally:
        srv.stop()


@pytest.mark.postgres
def test_a_key_revoked_on_one_process_is_refused_by_another_within_seconds(
    database: str, tmp_path: Path
) -> None:
    admin = keys_cli("keys", "create", "--admin", "--workspace", "ops", "--database-url", database).strip()
    env = {
        "BATCHD_DATABASE_URL": database,
        "BATCHD_MANAGED_KEYS": "true",
        "BATCHD_QUOTA_BATCHES": "6",
        **HOLD,
    }
    one = ServerProcess(tmp_path / "one", env).start()
    two = ServerProcess(tmp_path / "two", env).start()
    try:
        made = json.loads(
            keys_cli(
                "keys", "create", "--workspace", "team-a", "--json", admin_key=admin, base_url=one.base_url
            )
        )
        with sdk(two.base_url, made["key"]) as on_two:
            on_two.messages.batches.list()  # made on one, used on two at once
            keys_cli("keys", "revoke", made["id"], admin_key=admin, base_url=one.base_url)
            revoked = time.monotonic()
            while True:
                try:
                    on_two.messages.batches.list()
                except anthropic.AuthenticationError:
                    break
                assert time.monotonic() - revoked < 2.5, "still accepted 2.5 s after its revocation"
                time.sleep(0.05)
            print(f"refused by the other process {time.monotonic() - revoked:.2f} s after revocation")

        # One quota across both processes: 20 concurrent creates, half on each, against 6 batches.
        key = keys_cli(
            "keys", "create", "--workspace", "team-q", admin_key=admin, base_url=two.base_url
        ).strip()

        async def race() -> list[object]:
            clients = [
                anthropic.AsyncAnthropic(base_url=p.base_url, api_key=key, max_retries=0) for p in (one, two)
            ]
            calls = [
                clients[i % 2].messages.batches.create(requests=[simple_request("x")])
                for i in range(CONCURRENT)
            ]
            try:
                return await asyncio.gather(*calls, return_exceptions=True)
            finally:
                for c in clients:
                    await c.close()

        outcomes = asyncio.run(race())
        assert sum(isinstance(o, anthropic.RateLimitError) for o in outcomes) == CONCURRENT - 6, outcomes
    finally:
        one.stop()
        two.stop()
