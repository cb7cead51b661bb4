"""Idempotent create and the webhook outbox (issue 17), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from batchd import exceptions, models
from batchd.store import Store, base, hooks, queries
from batchd.store.base import DeliveryState, Idempotency, WebhookEndpoint
from batchd.store.sqlite.db import migrate
from tests.integration.factories import NOW, WS, make, ok

DAY = 86400.0


async def create(
    store: Store, key: str, digest: str = "d1", *, workspace: str = WS, now: float = NOW
) -> models.Batch:
    return await store.create_batch(
        workspace=workspace,
        custom_ids=["a", "b"],
        params=[b"{}", b"{}"],
        now=now,
        expires_at=now + 100,
        idempotency=Idempotency(key, digest, DAY),
    )


async def ids(store: Store, workspace: str = WS) -> list[str]:
    page, _ = await store.list_batches(workspace, limit=100)
    return [b.id for b in page]


async def test_same_key_same_body_answers_the_original_batch(store: Store) -> None:
    first = await create(store, "k1")
    again = await create(store, "k1", now=NOW + 5)
    assert again == first  # same id, same created_at: the original, not a copy
    assert await ids(store) == [first.id]


async def test_same_key_other_body_is_a_conflict_and_stores_nothing(store: Store) -> None:
    first = await create(store, "k1")
    with pytest.raises(exceptions.IdempotencyConflict, match=r"k1.*different request body"):
        await create(store, "k1", "d2")
    assert await ids(store) == [first.id]


async def test_keys_are_per_workspace_and_expire(store: Store) -> None:
    mine = await create(store, "k1")
    theirs = await create(store, "k1", workspace="other")
    assert theirs.id != mine.id and await ids(store, "other") == [theirs.id]
    later = await create(store, "k1", "d2", now=NOW + DAY + 1)  # the window has passed: a new batch
    assert later.id != mine.id
    assert await store.sweep_hooks(now=NOW + DAY + 2, idempotency_window=DAY, retention=30 * DAY) == 1


async def test_concurrent_duplicates_make_exactly_one_batch(store: Store) -> None:
    made = await asyncio.gather(*(create(store, "same") for _ in range(20)))
    assert len({b.id for b in made}) == 1
    assert await ids(store) == [made[0].id]


@pytest.mark.postgres
async def test_concurrent_duplicates_across_a_fleet(fleet: Callable[..., Awaitable[Store]]) -> None:
    stores = [await fleet(), await fleet()]
    made = await asyncio.gather(*(create(stores[i % 2], "same") for i in range(20)))
    assert len({b.id for b in made}) == 1 and await ids(stores[0]) == [made[0].id]


async def endpoint(store: Store, name: str = "e1", workspace: str = WS) -> WebhookEndpoint:
    e = WebhookEndpoint(f"whep_{name}", workspace, f"https://hooks.example/{name}", "whsec_AAAA", NOW)
    await store.create_webhook_endpoint(e)
    return e


async def due(store: Store, now: float = NOW + 10) -> list[base.WebhookDelivery]:
    return await store.claim_webhook_deliveries(100, now=now, lease=30)


async def test_the_transaction_that_ends_a_batch_writes_its_event(store: Store) -> None:
    await endpoint(store)
    await endpoint(store, "e2")
    batch = await make(store, 2)
    claimed = await store.claim_requests("w", 10, now=NOW, lease=10)
    await store.complete_requests([ok(claimed[0])], now=NOW + 1)
    assert await due(store) == []  # not ended yet: no event
    await store.complete_requests([ok(claimed[1])], now=NOW + 2)
    found = await due(store)
    assert sorted(d.endpoint_id for d in found) == ["whep_e1", "whep_e2"]
    d = found[0]
    assert d.event_id == "evt_" + batch.id.removeprefix("msgbatch_") and d.type == "message_batch.ended"
    assert d.batch == await store.get_batch(WS, batch.id) and d.attempt == 1 and d.created_at == NOW + 2
    assert await due(store) == []  # claimed: hidden for the lease


async def test_cancel_and_expiry_write_their_events(store: Store) -> None:
    await endpoint(store)
    canceled = await make(store, 2)
    await store.cancel_batch(WS, canceled.id, NOW + 1)
    expired = await make(store, 1, life=5)
    await store.expire_due(now=NOW + 6, grace=0)
    quiet = await make(store, 1, workspace="no-endpoints")
    await store.cancel_batch("no-endpoints", quiet.id, NOW + 1)
    types = {d.batch.id: d.type for d in await due(store)}
    assert types == {canceled.id: "message_batch.canceled", expired.id: "message_batch.expired"}


async def test_attempts_retries_dead_letter_and_redelivery(store: Store) -> None:
    await endpoint(store)
    batch = await make(store, 1)
    await store.cancel_batch(WS, batch.id, NOW)
    (d,) = await due(store)
    args = {"status": 500, "error": "HTTP 500"}
    await store.record_webhook_attempt(
        d.event_id, d.endpoint_id, state=DeliveryState.PENDING, next_attempt_at=NOW + 20, now=NOW + 10, **args
    )
    assert await due(store, NOW + 19) == []
    (again,) = await due(store, NOW + 20)
    assert again.attempt == 2
    await store.record_webhook_attempt(
        d.event_id, d.endpoint_id, state=DeliveryState.DEAD, next_attempt_at=NOW + 20, now=NOW + 20, **args
    )
    assert await due(store, NOW + 1000) == []
    (dead,) = await store.list_webhook_deliveries(WS, state=DeliveryState.DEAD)
    assert (dead.event_id, dead.attempts, dead.last_status, dead.url) == (d.event_id, 2, 500, d.url)
    assert await store.list_webhook_deliveries("other") == []
    with pytest.raises(exceptions.WebhookNotFound):
        await store.redeliver_webhook_event("other", d.event_id, now=NOW + 30)
    assert await store.redeliver_webhook_event(WS, d.event_id, now=NOW + 30) == 1
    (redelivered,) = await due(store, NOW + 30)
    assert redelivered.event_id == d.event_id and redelivered.started_at == NOW + 30
    await store.record_webhook_attempt(
        d.event_id,
        d.endpoint_id,
        state=DeliveryState.DELIVERED,
        next_attempt_at=NOW + 31,
        now=NOW + 31,
        status=204,
        error=None,
    )
    (done,) = await store.list_webhook_deliveries(WS)
    assert done.state == "delivered" and done.last_error is None
    # Old events that nothing waits for are swept, deliveries first.
    assert await store.sweep_hooks(now=NOW + 40 * DAY, idempotency_window=DAY, retention=29 * DAY) == 2
    assert await store.list_webhook_deliveries(WS) == []


async def test_endpoints_are_per_workspace(store: Store) -> None:
    mine = await endpoint(store)
    await endpoint(store, "theirs", workspace="other")
    assert await store.list_webhook_endpoints(WS) == [mine]
    with pytest.raises(exceptions.WebhookNotFound):
        await store.delete_webhook_endpoint(WS, "whep_theirs")
    batch = await make(store, 1)
    await store.cancel_batch(WS, batch.id, NOW)
    await store.delete_webhook_endpoint(WS, mine.id)  # its deliveries go with it
    assert await store.list_webhook_endpoints(WS) == [] and await due(store) == []


@pytest.mark.postgres
async def test_a_fleet_claims_each_delivery_once(fleet: Callable[..., Awaitable[Store]]) -> None:
    one, two = await fleet(), await fleet()
    await endpoint(one)
    for _ in range(10):
        b = await make(one, 1)
        await one.cancel_batch(WS, b.id, NOW)
    got = await asyncio.gather(
        *(s.claim_webhook_deliveries(3, now=NOW + 1, lease=30) for s in [one, two] * 3)
    )
    claimed = [d.event_id for batch in got for d in batch]
    assert len(claimed) == 10 and len(set(claimed)) == 10


async def test_configured_endpoints_are_synced(store: Store) -> None:
    mine = await endpoint(store, "api")
    first = WebhookEndpoint("whep_config_a", WS, "https://a.example/", "whsec_AAAA", NOW)
    second = WebhookEndpoint("whep_config_b", WS, "https://b.example/", "whsec_BBBB", NOW)
    await store.sync_config_webhook_endpoints("whep_config_", [first, second])
    batch = await make(store, 1)
    await store.cancel_batch(WS, batch.id, NOW)
    assert len(await due(store)) == 3
    moved = first._replace(url="https://a2.example/")
    await store.sync_config_webhook_endpoints("whep_config_", [moved])  # b leaves, a moves
    assert await store.list_webhook_endpoints(WS) == [mine, moved]  # by created_at, then id
    assert {d.endpoint_id for d in await store.list_webhook_deliveries(WS)} == {"whep_config_a", "whep_api"}


HOOK_ROWS = [  # the typed rows of issue 17 and the named queries that return them, per dialect
    (hooks.KeyRow._fields, {"sqlite": "fetch_idempotency_key", "postgres": "fetch_idempotency_key"}),
    (
        base.WebhookEndpoint._fields,
        {"sqlite": "list_webhook_endpoints", "postgres": "list_webhook_endpoints"},
    ),
    (
        base.DeliveryRecord._fields,
        {"sqlite": "list_webhook_deliveries", "postgres": "list_webhook_deliveries"},
    ),
    (hooks.DeliveryRow._fields, {"sqlite": "due_webhook_deliveries", "postgres": "claim_webhook_deliveries"}),
]


def test_sqlite_hook_queries_return_the_columns_their_rows_name(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "columns.db", isolation_level=None)
    migrate(conn, "sqlite")
    q = queries.load("sqlite")
    for fields, names in HOOK_ROWS:
        sql = q[names["sqlite"]]
        numbered = [int(n) for n in re.findall(r"\?(\d+)", sql)]
        args = [0] * (max(numbered) if numbered else sql.count("?"))
        assert [d[0] for d in conn.execute(sql, args).description] == list(fields), names


@pytest.mark.postgres
async def test_postgres_hook_queries_return_the_columns_their_rows_name(pg_url: str) -> None:
    from batchd.store.postgres import driver

    conn = await driver.connect(pg_url, timeout=5)
    try:
        q = queries.load("postgres")
        for fields, names in HOOK_ROWS:
            statement = await conn.prepare(q[names["postgres"]])  # type: ignore[attr-defined]
            assert [a.name for a in statement.get_attributes()] == list(fields), names
    finally:
        await conn.close()
