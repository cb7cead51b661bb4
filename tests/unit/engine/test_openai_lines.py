"""OpenAI batch lines run by the dispatcher on a real SQLite store with the simulator."""

from __future__ import annotations

import re
import time

import pytest

from batchd import exceptions, models
from batchd.backends.simulator import SimulatedBackend
from batchd.engine import openai_lines, prefix
from batchd.engine.router import Router, check
from batchd.store import base
from batchd.store.sqlite import SQLiteStore
from tests.unit.engine import harness
from tests.unit.engine.openai_harness import chat, line, lines_of, make_batch, run_lines


async def test_chat_completion_lines_settle_with_openai_output_lines(store: SQLiteStore) -> None:
    lines = [line(f"c{i}", chat(f"hello number {i}", max_tokens=20)) for i in range(5)]
    batch, found, _ = await run_lines(store, SimulatedBackend(), lines)
    assert batch.request_counts == models.RequestCounts(succeeded=5)
    for i in range(5):
        row = found[f"c{i}"]
        assert re.fullmatch(r"batch_req_[0-9A-Za-z]{24}", row["id"])
        assert row["error"] is None
        response = row["response"]
        assert response["status_code"] == 200 and response["request_id"].startswith("req_")
        body = response["body"]
        assert body["object"] == "chat.completion" and body["model"] == "m"
        choice = body["choices"][0]
        assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
        assert choice["finish_reason"] in ("stop", "length")
        usage = body["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
        assert usage["completion_tokens"] <= 20


async def test_an_http_error_is_an_error_line_with_its_status_and_openai_envelope(store: SQLiteStore) -> None:
    lines = [
        line("bad", chat("oops @sim:error=invalid_request")),
        line("ok", chat("fine")),
    ]
    batch, found, metrics = await run_lines(store, SimulatedBackend(), lines)
    assert batch.request_counts == models.RequestCounts(succeeded=1, errored=1)
    bad = found["bad"]
    assert bad["error"] is None and bad["response"]["status_code"] == 400
    assert bad["response"]["body"]["error"]["type"] == "invalid_request_error"
    assert set(bad["response"]["body"]["error"]) == {"message", "type", "param", "code"}
    scraped = metrics.render().decode()
    assert 'batchd_requests_total{model="m",result="errored"} 1.0' in scraped
    assert 'batchd_requests_total{model="m",result="succeeded"} 1.0' in scraped


async def test_429s_are_retried_by_the_engine_then_succeed(store: SQLiteStore) -> None:
    lines = [line("c", chat("try @sim:fail=429x2"))]
    batch, found, metrics = await run_lines(
        store, SimulatedBackend(), lines, retry_base="1ms", retry_max="2ms"
    )
    assert batch.request_counts.succeeded == 1 and found["c"]["response"]["status_code"] == 200
    assert "batchd_retries_total" in metrics.render().decode()


async def test_a_timeout_is_a_request_timeout_error_line(store: SQLiteStore) -> None:
    lines = [line("slow", chat("wait @sim:delay=30")), line("fails", chat("x @sim:fail=timeout"))]
    batch, found, _ = await run_lines(
        store, SimulatedBackend(), lines, request_timeout="200ms", max_attempts="2", retry_base="1ms"
    )
    assert batch.request_counts.errored == 2
    for custom_id in ("slow", "fails"):
        assert found[custom_id]["response"] is None
        assert found[custom_id]["error"]["code"] == "request_timeout"


async def test_lines_its_backend_cannot_run_fail_naming_the_field(store: SQLiteStore) -> None:
    lines = [
        line("n", chat("x", n=3)),
        line("url", chat("x"), url="/v1/moderations"),
        line("prompt", {"model": "m", "prompt": [1, 2]}, url="/v1/completions"),
    ]
    batch, found, _ = await run_lines(store, SimulatedBackend(), lines)
    assert batch.request_counts.errored == 3
    for custom_id, param in (("n", "n"), ("url", "url"), ("prompt", "prompt")):
        response = found[custom_id]["response"]
        assert response["status_code"] == 400, found[custom_id]
        assert response["body"]["error"]["param"] == param


async def test_completions_and_embeddings_lines_on_the_simulator(store: SQLiteStore) -> None:
    lines = [
        line("t", {"model": "m", "prompt": "Once upon a time", "max_tokens": 5}, url="/v1/completions"),
        line("e", {"model": "m", "input": ["a b", "c"], "dimensions": 4}, url="/v1/embeddings"),
    ]
    batch, found, _ = await run_lines(store, SimulatedBackend(), lines)
    assert batch.request_counts.succeeded == 2
    text = found["t"]["response"]["body"]
    assert text["object"] == "text_completion" and text["usage"]["completion_tokens"] <= 5
    vectors = found["e"]["response"]["body"]
    assert [len(d["embedding"]) for d in vectors["data"]] == [4, 4]
    assert vectors["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


async def test_lines_abandoned_by_crashed_workers_are_internal_errors(store: SQLiteStore) -> None:
    batch = await make_batch(store, [line("c", chat("x"))])
    for _ in range(2):  # two workers claim it and die
        assert await store.claim_requests("dead", 10, now=batch.created_at, lease=1)
        await store.recover_leases(now=batch.created_at, everything=True)
    async with harness.running(store, SimulatedBackend(), harness.settings_of(max_claims="2")):
        ended = await harness.until_ended(store, batch.id)
    assert ended.request_counts.errored == 1
    found = await lines_of(store, batch.id)
    assert found["c"]["response"] is None and found["c"]["error"]["code"] == "internal_error"


async def test_slow_simulator_lines_run_as_tasks_under_the_route_slots(store: SQLiteStore) -> None:
    lines = [line(f"c{i}", chat(f"q{i}")) for i in range(20)]
    batch, found, _ = await run_lines(store, SimulatedBackend(latency=0.01), lines, concurrency="4")
    assert batch.request_counts.succeeded == 20
    assert len({row["id"] for row in found.values()}) == 20


class FleetSlots(SQLiteStore):
    """The SQLite store with scripted fleet-wide slots (as PostgreSQL has): the first wait times out."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.events: list[str] = []
        self.fleet_slots = self

    async def acquire(self, name: str, limit: int, *, deadline: float) -> base.Slot:
        self.events.append(f"wait {name} {limit}")
        if len(self.events) == 1:
            raise TimeoutError
        self.events.append("acquire")
        return base.Slot(route=name, number=0, session=0)

    async def release(self, slot: base.Slot) -> None:
        self.events.append("release")


async def test_lines_take_their_route_fleet_slots_and_retry_a_full_fleet(new_store: harness.NewStore) -> None:
    store = await new_store(FleetSlots)
    routes = '[{"model": "gpt-*", "fleet_concurrency": 3}]'
    settings = harness.settings_of(routes=routes, retry_base="1ms", retry_max="2ms")
    router = Router.from_settings(settings)
    batch = await make_batch(store, [line("c", chat("hi", model="gpt-4o")), line("d", chat("hi"))])
    try:
        async with harness.running(store, router, settings):
            ended = await harness.until_ended(store, batch.id)
    finally:
        await router.aclose()
    assert ended.request_counts.succeeded == 2
    # only the routed model's line waits for the route's slot; the first wait timed out and was retried
    assert store.events == ["wait gpt-* 3", "wait gpt-* 3", "acquire", "release"]


def test_the_prefix_key_of_a_stored_line_is_that_of_its_prepared_params() -> None:
    system = {"role": "system", "content": "long shared instructions"}
    body = chat("q1", messages=[system, {"role": "user", "content": "q1"}], tools=[{"type": "function"}])
    raw = line("c", body)
    claimed = models.ClaimedRequest(models.new_openai_batch_id(), 0, "c", raw, 0, time.time() + 60)
    router = harness.router_for(SimulatedBackend(), harness.settings_of())
    prepared, _ = openai_lines.Lines(harness.settings_of()).prepare(claimed, router)
    assert prefix.prefix_key(raw) == prefix.prefix_key(prepared)
    other = line("d", {**body, "messages": [system, {"role": "user", "content": "q2"}]})
    assert prefix.prefix_key(other) == prefix.prefix_key(raw)  # same head, another question
    assert prefix.prefix_key(line("e", chat("q1"))) != prefix.prefix_key(raw)


def test_gguf_embeddings_without_gguf_is_refused_at_start() -> None:
    with pytest.raises(exceptions.ConfigError, match="set gguf"):
        check(harness.settings_of(gguf_embeddings="true"), environ={})
