"""Scheduling, end to end through the SDK: batches share the engine fairly across workspaces, and a
realtime call goes before the batch work queued on its route. Assertions are about order and
shares (counts read back), not timings a slow machine would break."""

from __future__ import annotations

import time
from collections.abc import Callable

import anthropic

from tests.acceptance.conftest import make_client, simple_request, wait_ended
from tests.acceptance.server import ServerProcess

KEYS = "key-a:team-a,key-b:team-b"


def keyed(base_url: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=base_url, api_key=key, _strict_response_validation=True, max_retries=0
    )


def succeeded(client: anthropic.Anthropic, batch_id: str) -> int:
    return client.messages.batches.retrieve(batch_id).request_counts.succeeded


def wait_succeeded(client: anthropic.Anthropic, batch_id: str, more_than: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while (done := succeeded(client, batch_id)) <= more_than:
        assert time.monotonic() < deadline, f"{batch_id}: no progress past {more_than}"
        time.sleep(0.05)
    return done


def test_a_small_batch_of_another_workspace_ends_while_a_backlog_runs(
    server_factory: Callable[..., ServerProcess],
) -> None:
    srv = server_factory(api_keys=KEYS, sim_latency="50ms", concurrency="16")
    with keyed(srv.base_url, "key-a") as a, keyed(srv.base_url, "key-b") as b:
        big = a.messages.batches.create(requests=[simple_request(f"a{i}") for i in range(3000)])
        wait_succeeded(a, big.id, 0)
        small = b.messages.batches.create(requests=[simple_request(f"b{i}") for i in range(10)])
        wait_ended(b, small.id, 10, timeout=60)
        # First come, first served would have run all 3,000 first (~10 s at 320 requests/s).
        assert a.messages.batches.retrieve(big.id).request_counts.processing > 2000
        a.messages.batches.cancel(big.id)


def test_two_busy_workspaces_get_equal_throughput(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(api_keys=KEYS, sim_latency="20ms", concurrency="32")
    with keyed(srv.base_url, "key-a") as a, keyed(srv.base_url, "key-b") as b:
        batch_a = a.messages.batches.create(requests=[simple_request(f"a{i}") for i in range(6000)])
        wait_succeeded(a, batch_a.id, 0)
        batch_b = b.messages.batches.create(requests=[simple_request(f"b{i}") for i in range(6000)])
        start_b = wait_succeeded(b, batch_b.id, 0)
        start_a = succeeded(a, batch_a.id)
        wait_succeeded(b, batch_b.id, start_b + 1500)
        got_a, got_b = succeeded(a, batch_a.id) - start_a, succeeded(b, batch_b.id) - start_b
        assert abs(got_a - got_b) <= 0.1 * max(got_a, got_b), (got_a, got_b)
        a.messages.batches.cancel(batch_a.id)
        b.messages.batches.cancel(batch_b.id)


def test_a_realtime_call_goes_before_the_batch_calls_queued_on_its_route(
    server_factory: Callable[..., ServerProcess],
) -> None:
    # The route takes 2 calls at once; the engine holds 64 batch calls ready for it.
    routes = '[{"model": "sim-*", "concurrency": 2}]'
    srv = server_factory(routes=routes, sim_latency="100ms", concurrency="64")
    with make_client(srv.base_url) as client:
        requests = [simple_request(f"r{i}", model="sim-x") for i in range(400)]
        batch = client.messages.batches.create(requests=requests)
        before = wait_succeeded(client, batch.id, 4)
        message = client.messages.create(
            model="sim-x", max_tokens=16, messages=[{"role": "user", "content": "now, please"}]
        )
        after = succeeded(client, batch.id)
        assert message.type == "message"
        # Behind the ~60 batch calls queued, 30 route turns: here it waits for one call to end.
        assert after - before < 20, (before, after)
        client.messages.batches.cancel(batch.id)


def test_realtime_calls_are_not_starved_by_several_batches(
    server_factory: Callable[..., ServerProcess],
) -> None:
    srv = server_factory(sim_latency="10ms")
    with make_client(srv.base_url) as client:
        for _ in range(2):
            client.messages.batches.create(requests=[simple_request(f"r{i}") for i in range(2000)])
        for _ in range(5):
            reply = client.messages.create(
                model="sim-x", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
            )
            assert reply.type == "message"
