"""Adaptive concurrency end to end: `batchd serve` routed to a real loopback upstream that turns
overloaded (429, 529 and 503 to batch calls) and back. The route's limit is read from /metrics;
assertions are about what the limit and the upstream saw, and the results, never timings."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.acceptance.conftest import make_client, simple_request, wait_ended
from tests.acceptance.server import ServerProcess, ThreadedApp

CONCURRENCY = 8
OVERLOAD = ((429, "rate_limit_error"), (529, "overloaded_error"), (503, "api_error"))


class Overloadable:
    """An Anthropic-compatible upstream answering in `latency` seconds; while `overloaded`, it
    answers batch calls (text "item …") with 429, 529 and 503 in turn, and other calls as usual."""

    def __init__(self, latency: float = 0.03) -> None:
        self.latency = latency
        self.overloaded = threading.Event()
        self.inflight = self.max_inflight = 0
        self.refused = 0
        self.answered: list[str] = []  # the texts answered 200, in order
        self._statuses = itertools.cycle(OVERLOAD)
        self.app = ThreadedApp(Starlette(routes=[Route("/v1/messages", self.messages, methods=["POST"])]))

    async def messages(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        text = body["messages"][-1]["content"]
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            if self.overloaded.is_set() and text.startswith("item"):
                self.refused += 1
                status, kind = next(self._statuses)
                error = {"type": "error", "error": {"type": kind, "message": "overloaded, try later"}}
                return Response(orjson.dumps(error), status_code=status, media_type="application/json")
            await asyncio.sleep(self.latency)
            self.answered.append(text)
            message = {
                "id": "msg_up",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [{"type": "text", "text": f"echo: {text}"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 5, "output_tokens": 2},
            }
            return Response(orjson.dumps(message), media_type="application/json")
        finally:
            self.inflight -= 1


@pytest.fixture
def overloadable() -> Iterator[Overloadable]:
    up = Overloadable()
    up.app.serve()
    yield up
    up.app.stop()


LIMIT = re.compile(r'batchd_route_concurrency_limit\{model="up-\*"\} ([\d.]+)')


def limit_of(srv: ServerProcess) -> int:
    text = httpx.get(f"{srv.base_url}/metrics", timeout=10).text
    found = LIMIT.search(text)
    assert found, "no batchd_route_concurrency_limit for the route"
    return int(float(found.group(1)))


def wait_limit(srv: ServerProcess, ok: Callable[[int], bool], seen: list[int], timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while not ok(limit := limit_of(srv)):
        seen.append(limit)
        assert time.monotonic() < deadline, f"the limit stayed {limit} (seen {seen[-20:]})"
        time.sleep(0.05)
    seen.append(limit)
    return limit


def test_the_limit_backs_off_on_overload_recovers_after_and_realtime_still_goes_first(
    server_factory: Callable[..., ServerProcess], overloadable: Overloadable
) -> None:
    routes = orjson.dumps(
        [
            {
                "model": "up-*",
                "backend": "anthropic",
                "base_url": overloadable.app.url,
                "concurrency": CONCURRENCY,
                "timeout": "10s",
            }
        ]
    ).decode()
    srv = server_factory(
        routes=routes,
        concurrency="64",
        max_attempts="10000",  # every request outlives the overload
        retry_base="20ms",
        retry_max="100ms",
        adaptive_tolerance="3",  # about overload here: latency noise on a shared machine must not cut it
        adaptive_latency="always",  # learnt from the floor with no realtime call too
    )
    n = 1200
    seen: list[int] = []
    with make_client(srv.base_url) as client:
        assert limit_of(srv) == 1  # the floor: where it measures the idle latency
        requests = [simple_request(f"r{i}", f"item {i}", model="up-*") for i in range(n)]
        batch = client.messages.batches.create(requests=requests)
        wait_limit(srv, lambda limit: limit == CONCURRENCY, seen)  # grows to the route's concurrency

        overloadable.overloaded.set()
        wait_limit(srv, lambda limit: limit <= 2, seen)  # halved on each overload answer
        # While it is cut, a realtime call is still answered at once: it is never held by the limit.
        reply = client.messages.create(
            model="up-x", max_tokens=16, messages=[{"role": "user", "content": "now, please"}]
        )
        assert reply.content[0].type == "text" and reply.content[0].text == "echo: now, please"
        assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
        refused = overloadable.refused
        assert refused > 0

        overloadable.overloaded.clear()
        wait_limit(srv, lambda limit: limit == CONCURRENCY, seen)  # recovers with the upstream
        ended = wait_ended(client, batch.id, n, timeout=120)
        assert ended.request_counts.succeeded == n
        results = list(client.messages.batches.results(batch.id))

    assert sorted(r.custom_id for r in results) == sorted(f"r{i}" for i in range(n))  # one each
    assert all(r.result.type == "succeeded" for r in results)
    assert sorted(t for t in overloadable.answered if t.startswith("item")) == sorted(
        f"item {i}" for i in range(n)
    )
    # The limit never passed the route's concurrency, nor did the calls in flight, realtime included.
    assert max(seen) <= CONCURRENCY and overloadable.max_inflight <= CONCURRENCY
