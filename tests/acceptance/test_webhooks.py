"""Idempotent create and signed completion webhooks (issue 17), end to end: real `batchd serve`
processes, the official SDK, a receiver on a real loopback socket, SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from click.testing import CliRunner, Result

from batchd.cli import commands
from tests.acceptance.conftest import make_client, simple_request, wait_ended
from tests.acceptance.server import ServerProcess, child_env
from tests.acceptance.webhook_receiver import Receiver, always

# Fast retries, and the receiver's loopback address allowed.
FAST = {
    "webhook_allowed_hosts": "127.0.0.1",
    "webhook_retry_base": "100ms",
    "webhook_retry_max": "200ms",
    "webhook_poll_interval": "50ms",
    "webhook_timeout": "1s",
}


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(script: Callable[[int], tuple[int, float]] | None = None) -> Receiver:
        made.append(Receiver(script or always(200)))
        return made[-1]

    yield make
    for r in made:
        r.close()


def api(srv: ServerProcess, method: str, path: str, key: str = "test-key", **kwargs: Any) -> httpx.Response:
    return httpx.request(method, srv.base_url + path, headers={"x-api-key": key}, timeout=10, **kwargs)


def add_endpoint(srv: ServerProcess, receiver: Receiver, key: str = "test-key") -> dict[str, Any]:
    r = api(srv, "POST", "/v1/webhooks/endpoints", key, json={"url": receiver.url})
    assert r.status_code == 200, r.text
    endpoint: dict[str, Any] = r.json()
    assert endpoint["secret"].startswith("whsec_")
    receiver.secret = endpoint["secret"]
    return endpoint


def deliveries(srv: ServerProcess, key: str = "test-key", **query: str) -> list[dict[str, Any]]:
    r = api(srv, "GET", "/v1/webhooks/deliveries", key, params=query)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["data"]
    return found


def wait_delivery(
    srv: ServerProcess, state: str, key: str = "test-key", timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = deliveries(srv, key, state=state)
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no {state} delivery: {deliveries(srv, key)}"
        time.sleep(0.05)


def cli(base_url: str, *args: str, api_key: str) -> Result:
    """`batchd ARGS` in this process (the subprocess runs of test_cli.py cost ~1 s each here)."""
    env = {"ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": api_key}
    return CliRunner().invoke(commands.main, list(args), env=env)


def event_id(batch_id: str) -> str:
    return "evt_" + batch_id.removeprefix("msgbatch_")


# -- idempotent create --------------------------------------------------------------------------


def test_20_concurrent_duplicates_make_one_batch(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory()
    requests: Any = [simple_request(f"r{i}") for i in range(50)]
    key = {"Idempotency-Key": "nightly-2026-11-30"}

    def create(_: int) -> Any:
        with make_client(srv.base_url) as c:
            return c.messages.batches.create(requests=requests, extra_headers=key)

    with ThreadPoolExecutor(20) as pool:
        made = list(pool.map(create, range(20)))
    assert len({b.id for b in made}) == 1
    assert "batchd_batches_created_total 1.0" in api(srv, "GET", "/metrics").text  # replays are not counted
    with make_client(srv.base_url) as c:
        assert [b.id for b in c.messages.batches.list()] == [made[0].id]
        with pytest.raises(
            anthropic.BadRequestError, match="already used with a different request body"
        ) as err:
            c.messages.batches.create(requests=requests[:1], extra_headers=key)
        assert err.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
        other = c.messages.batches.create(requests=requests, extra_headers={"Idempotency-Key": "another"})
        assert other.id != made[0].id
        assert len(c.messages.batches.list().data) == 2
        wait_ended(c, made[0].id, 50)


def test_a_replay_answers_its_batch_in_a_full_workspace(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(quota_batches="1")
    requests: Any = [simple_request("slow", "wait @sim:delay=3")]
    with make_client(srv.base_url) as c:
        first = c.messages.batches.create(requests=requests, extra_headers={"Idempotency-Key": "k"})
        again = c.messages.batches.create(requests=requests, extra_headers={"Idempotency-Key": "k"})
        assert again.id == first.id  # the workspace is full, but this is the batch it holds
        for headers in ({"Idempotency-Key": "k2"}, {}):
            with pytest.raises(anthropic.RateLimitError):
                c.messages.batches.create(requests=requests, extra_headers=headers)
        assert [b.id for b in c.messages.batches.list()] == [first.id]
    srv.kill9()  # rather than wait for the slow request at shutdown


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_crash_between_commit_and_response_still_yields_one_batch(
    server_factory: Callable[..., ServerProcess], tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    marker = tmp_path / "killed-after-commit"
    # On PostgreSQL the killed process may have claimed requests already: take them over quickly.
    store = (
        {"database_url": request.getfixturevalue("database"), "takeover_after": "1s"}
        if kind == "postgres"
        else {}
    )
    # The server kills itself right after the first create with a key commits, before answering.
    srv = server_factory(test_kill_after_commit=str(marker), **store)
    requests: Any = [simple_request(f"r{i}") for i in range(20)]
    key = {"Idempotency-Key": "retry-me"}
    with make_client(srv.base_url) as c, pytest.raises(anthropic.APIConnectionError):
        c.messages.batches.create(requests=requests, extra_headers=key)
    assert marker.exists()
    srv.kill9()
    srv.start()
    with make_client(srv.base_url) as c:
        retried = c.messages.batches.create(requests=requests, extra_headers=key)
        assert [b.id for b in c.messages.batches.list()] == [retried.id]  # the committed one, no other
        assert retried.created_at.timestamp() < marker.stat().st_mtime + 1
        assert wait_ended(c, retried.id, 20).request_counts.succeeded == 20


# -- webhooks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_delivered_once_signed_through_failures_and_a_kill_9(
    server_factory: Callable[..., ServerProcess],
    receivers: Callable[..., Receiver],
    kind: str,
    request: pytest.FixtureRequest,
) -> None:
    in_flight = threading.Event()

    def script(attempt: int) -> tuple[int, float]:
        if attempt <= 2:
            return 500, 0.0  # the first attempts fail
        if attempt == 3:
            in_flight.set()
            return 200, 5.0  # processed, but the answer waits: the sender is killed meanwhile
        return 200, 0.0

    receiver = receivers(script)
    store = {"database_url": request.getfixturevalue("database")} if kind == "postgres" else {}
    srv = server_factory(**FAST, **store)
    add_endpoint(srv, receiver)
    with make_client(srv.base_url) as c:
        batch = c.messages.batches.create(requests=[simple_request(f"r{i}") for i in range(5)])
        wait_ended(c, batch.id, 5)
    assert in_flight.wait(20)
    srv.kill9()  # the batch has ended, its delivery is not recorded
    srv.start()
    done = wait_delivery(srv, "delivered")
    assert done["event_id"] == event_id(batch.id) and done["attempts"] == 4 and done["last_status"] == 200
    assert [h["webhook-id"] for h, _ in receiver.attempts] == [event_id(batch.id)] * 4  # one stable id
    assert receiver.bad_signatures == 0 and receiver.duplicates == 1  # deduplicated by id: once
    (payload,) = receiver.delivered.values()
    assert payload["type"] == "message_batch.ended"
    assert payload["data"] == api(srv, "GET", f"/v1/messages/batches/{batch.id}").json()  # as the API answers
    assert payload["timestamp"] == payload["data"]["ended_at"]


def test_cancel_and_expiry_send_their_events(
    server_factory: Callable[..., ServerProcess], receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers()
    srv = server_factory(**FAST, batch_lifetime="2s", expiry_grace="200ms", maintenance_interval="100ms")
    add_endpoint(srv, receiver)
    with make_client(srv.base_url) as c:
        slow = [simple_request(f"s{i}", "wait @sim:delay=3") for i in range(3)]
        canceled = c.messages.batches.create(requests=[simple_request(f"c{i}") for i in range(3)] + slow)
        c.messages.batches.cancel(canceled.id)
        expired = c.messages.batches.create(requests=slow)
    receiver.wait_for(lambda r: len(r.delivered) == 2)
    by_batch = {p["data"]["id"]: p for p in receiver.delivered.values()}
    assert by_batch[canceled.id]["type"] == "message_batch.canceled"
    assert by_batch[canceled.id]["data"]["cancel_initiated_at"] is not None
    assert by_batch[expired.id]["type"] == "message_batch.expired"
    assert by_batch[expired.id]["data"]["request_counts"]["expired"] == 3
    assert {p["data"]["processing_status"] for p in by_batch.values()} == {"ended"}


def test_private_and_loopback_addresses_are_refused(
    server_factory: Callable[..., ServerProcess], receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers()
    srv = server_factory(webhook_poll_interval="50ms")  # no webhook_allowed_hosts
    for url, kind in [(receiver.url, "loopback"), ("http://169.254.169.254/latest", "link-local")]:
        r = api(srv, "POST", "/v1/webhooks/endpoints", json={"url": url})
        assert r.status_code == 400 and kind in r.json()["error"]["message"], r.text
    assert api(srv, "POST", "/v1/webhooks/endpoints", json={"url": "ftp://x.example/"}).status_code == 400
    # A name is judged when it resolves, at delivery: refused there, dead at once, never sent.
    by_name = receiver.url.replace("127.0.0.1", "localhost")
    assert api(srv, "POST", "/v1/webhooks/endpoints", json={"url": by_name}).status_code == 200
    with make_client(srv.base_url) as c:
        batch = c.messages.batches.create(requests=[simple_request("r")])
        wait_ended(c, batch.id, 1)
    dead = wait_delivery(srv, "dead")
    assert dead["event_id"] == event_id(batch.id) and "loopback" in dead["last_error"], dead
    assert receiver.attempts == []


def test_dead_letter_redelivery_and_the_cli_per_workspace(
    server_factory: Callable[..., ServerProcess], receivers: Callable[..., Receiver]
) -> None:
    up = threading.Event()
    receiver = receivers(lambda attempt: (200 if up.is_set() else 503, 0.0))
    srv = server_factory(**FAST, api_keys="ka:team-a,kb:team-b", webhook_give_up_after="500ms")
    added = cli(srv.base_url, "webhooks", "add", receiver.url, "--json", api_key="ka")
    assert added.exit_code == 0, added.output
    endpoint = json.loads(added.stdout)
    receiver.secret = endpoint["secret"]
    listed = cli(srv.base_url, "webhooks", "list", api_key="ka")
    assert endpoint["id"] in listed.stdout and receiver.url in listed.stdout
    assert "secret" not in listed.stdout and endpoint["secret"] not in listed.stdout
    assert api(srv, "GET", "/v1/webhooks/endpoints", "kb").json()["data"] == []  # another workspace's
    assert api(srv, "DELETE", f"/v1/webhooks/endpoints/{endpoint['id']}", "kb").status_code == 404

    with anthropic.Anthropic(base_url=srv.base_url, api_key="ka", max_retries=0) as c:
        batch = c.messages.batches.create(requests=[simple_request("r")])
        wait_ended(c, batch.id, 1)
    evt = event_id(batch.id)
    dead = wait_delivery(srv, "dead", "ka")
    assert dead["attempts"] >= 2 and dead["last_status"] == 503
    shown = cli(srv.base_url, "webhooks", "deliveries", "--state", "dead", api_key="ka")
    assert evt in shown.stdout and "dead" in shown.stdout and "HTTP 503" in shown.stdout
    assert deliveries(srv, "kb") == []
    assert api(srv, "POST", f"/v1/webhooks/events/{evt}/redeliver", "kb").status_code == 404

    up.set()
    again = cli(srv.base_url, "webhooks", "redeliver", evt, api_key="ka")
    assert again.exit_code == 0 and "1 delivery" in again.stdout, again.output
    done = wait_delivery(srv, "delivered", "ka")
    assert done["event_id"] == evt and receiver.bad_signatures == 0 and list(receiver.delivered) == [evt]
    assert cli(srv.base_url, "webhooks", "remove", endpoint["id"], api_key="kb").exit_code == 4  # not theirs
    removed = cli(srv.base_url, "webhooks", "remove", endpoint["id"], api_key="ka")
    assert removed.exit_code == 0 and api(srv, "GET", "/v1/webhooks/endpoints", "ka").json()["data"] == []


@pytest.mark.postgres
def test_a_postgres_fleet_makes_one_batch_and_delivers_once(
    server_factory: Callable[..., ServerProcess], receivers: Callable[..., Receiver], database: str
) -> None:
    receiver = receivers()
    one, two = (server_factory(**FAST, database_url=database) for _ in range(2))
    add_endpoint(one, receiver)
    requests: Any = [simple_request(f"r{i}") for i in range(10)]

    def create(i: int) -> Any:
        with make_client((one, two)[i % 2].base_url) as c:
            return c.messages.batches.create(requests=requests, extra_headers={"Idempotency-Key": "fleet"})

    with ThreadPoolExecutor(20) as pool:
        made = list(pool.map(create, range(20)))
    assert len({b.id for b in made}) == 1
    with make_client(two.base_url) as c:
        assert [b.id for b in c.messages.batches.list()] == [made[0].id]
        wait_ended(c, made[0].id, 10)
    receiver.wait_for(lambda r: len(r.delivered) == 1)
    time.sleep(0.5)  # both processes poll every 50 ms: a second claim would have shown by now
    assert len(receiver.attempts) == 1 and receiver.duplicates == 0


def test_configured_endpoints(
    server_factory: Callable[..., ServerProcess], receivers: Callable[..., Receiver], tmp_path: Path
) -> None:
    receiver = receivers()
    receiver.secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    hooks = json.dumps([{"url": receiver.url, "secret_env": "BATCHD_TEST_HOOK_SECRET"}])
    unset = subprocess.run(
        [sys.executable, "-m", "batchd", "serve", "--data-dir", str(tmp_path / "unset")],
        env=child_env({"BATCHD_WEBHOOKS": hooks, "BATCHD_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unset.returncode == 2 and "BATCHD_TEST_HOOK_SECRET, which is not set" in unset.stderr
    srv = server_factory(**FAST, webhooks=hooks, test_hook_secret=receiver.secret)
    (endpoint,) = api(srv, "GET", "/v1/webhooks/endpoints").json()["data"]
    assert endpoint["id"].startswith("whep_config_") and endpoint["url"] == receiver.url
    refused = api(srv, "DELETE", f"/v1/webhooks/endpoints/{endpoint['id']}")
    assert refused.status_code == 400 and "configuration" in refused.json()["error"]["message"]
    with make_client(srv.base_url) as c:
        batch = c.messages.batches.create(requests=[simple_request("r")])
        wait_ended(c, batch.id, 1)
    receiver.wait_for(lambda r: len(r.delivered) == 1)  # signed with the configured secret
    assert receiver.bad_signatures == 0 and list(receiver.delivered) == [event_id(batch.id)]
