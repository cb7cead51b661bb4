"""Every result type, produced by a real server and read back through the official SDK."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import pytest

from tests.acceptance.conftest import MODEL, make_client, simple_request, total, wait_ended
from tests.acceptance.server import ServerProcess


def results_by_id(client: anthropic.Anthropic, batch_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in client.messages.batches.results(batch_id):
        assert line.custom_id not in out, "a request has more than one result"
        out[line.custom_id] = line.result
    return out


def test_errored_results_do_not_hurt_neighbours(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(retry_base="10ms", retry_max="50ms", max_attempts="3")
    client = make_client(srv.base_url)
    requests = [
        simple_request("good"),
        {
            "custom_id": "no-max-tokens",
            "params": {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
        },
        {
            "custom_id": "bad-role",
            "params": {"model": MODEL, "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]},
        },
        simple_request("final-error", "please fail @sim:error=overloaded_error"),
        simple_request("transient", "recover @sim:fail=529x2"),
        simple_request("exhausted", "never @sim:fail=429"),
        simple_request("timeout", "slow @sim:fail=timeoutx1"),
    ]
    batch = client.messages.batches.create(requests=requests)
    ended = wait_ended(client, batch.id, len(requests))
    results = results_by_id(client, batch.id)
    assert ended.request_counts.succeeded == 3 and ended.request_counts.errored == 4

    assert results["good"].type == "succeeded"
    assert results["transient"].type == "succeeded"
    assert results["timeout"].type == "succeeded"
    missing = results["no-max-tokens"]
    assert missing.type == "errored"
    assert missing.error.type == "error"
    assert missing.error.error.type == "invalid_request_error"
    assert "max_tokens" in missing.error.error.message
    assert results["bad-role"].error.error.type == "invalid_request_error"
    assert "role" in results["bad-role"].error.error.message
    assert results["final-error"].error.error.type == "overloaded_error"
    assert results["exhausted"].error.error.type == "rate_limit_error"
    client.close()


def test_cancel_mid_run(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(concurrency="2")
    client = make_client(srv.base_url)
    requests = [simple_request(f"r{i}", "take your time @sim:delay=1.5") for i in range(10)]
    batch = client.messages.batches.create(requests=requests)
    time.sleep(0.5)  # the first two are claimed at once and sleep 1.5 s in the simulator
    canceled = client.messages.batches.cancel(batch.id)
    assert canceled.processing_status == "canceling"
    assert canceled.cancel_initiated_at is not None
    assert canceled.request_counts.canceled == 8 and canceled.request_counts.processing == 2
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.delete(batch.id)
    again = client.messages.batches.cancel(batch.id)  # idempotent while canceling
    assert again.processing_status in ("canceling", "ended")

    ended = wait_ended(client, batch.id, 10)
    assert ended.request_counts.canceled == 8 and ended.request_counts.succeeded == 2
    results = results_by_id(client, batch.id)
    assert sorted(r.type for r in results.values()) == ["canceled"] * 8 + ["succeeded"] * 2
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.cancel(batch.id)  # ended batches cannot be canceled
    assert client.messages.batches.delete(batch.id).id == batch.id
    client.close()


def test_expiry(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(
        concurrency="2", batch_lifetime="2s", expiry_grace="1s", maintenance_interval="100ms"
    )
    client = make_client(srv.base_url)
    requests = [simple_request("quick")] + [simple_request(f"slow{i}", "@sim:delay=30") for i in range(5)]
    batch = client.messages.batches.create(requests=requests)
    assert (batch.expires_at - batch.created_at).total_seconds() == pytest.approx(2, abs=0.01)
    ended = wait_ended(client, batch.id, 6, timeout=15)
    assert ended.request_counts.succeeded == 1 and ended.request_counts.expired == 5
    results = results_by_id(client, batch.id)
    assert results["quick"].type == "succeeded"
    assert {results[f"slow{i}"].type for i in range(5)} == {"expired"}
    client.close()


def test_archival_after_retention(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(retention="2s", maintenance_interval="100ms")
    client = make_client(srv.base_url)
    batch = client.messages.batches.create(requests=[simple_request("a"), simple_request("b")])
    ended = wait_ended(client, batch.id, 2)
    assert len(results_by_id(client, batch.id)) == 2
    deadline = time.monotonic() + 10
    while (got := client.messages.batches.retrieve(batch.id)).archived_at is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert got.archived_at >= ended.created_at
    assert got.request_counts.succeeded == 2  # still viewable, counts kept
    assert batch.id in [b.id for b in client.messages.batches.list()]
    r = httpx.get(srv.base_url + f"/v1/messages/batches/{batch.id}/results")
    assert r.status_code == 404 and "archived" in r.json()["error"]["message"]
    with pytest.raises(anthropic.NotFoundError):
        list(client.messages.batches.results(batch.id))
    assert client.messages.batches.delete(batch.id).id == batch.id
    client.close()


def test_strict_mode_rejects_the_shorthand(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(strict="true")
    client = make_client(srv.base_url)
    batch = client.messages.batches.create(
        requests=[
            simple_request("plain"),
            simple_request("shorthand", web_search={"type": "enabled"}),
        ]
    )
    wait_ended(client, batch.id, 2)
    results = results_by_id(client, batch.id)
    assert results["plain"].type == "succeeded"
    assert results["shorthand"].type == "errored"
    assert "web_search" in results["shorthand"].error.error.message
    client.close()


def test_counts_are_live_while_running(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(concurrency="4", sim_latency="50ms")
    client = make_client(srv.base_url)
    batch = client.messages.batches.create(requests=[simple_request(f"r{i}") for i in range(40)])
    seen_partial = False
    deadline = time.monotonic() + 20
    while True:
        got = client.messages.batches.retrieve(batch.id)
        assert total(got) == 40
        if 0 < got.request_counts.succeeded < 40 and got.processing_status == "in_progress":
            seen_partial = True
        if got.processing_status == "ended":
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert seen_partial, "request_counts did not move while the batch ran"
    client.close()
