"""The store's managed keys and quotas (issue 17), on SQLite and PostgreSQL: key lifecycle, usage,
quotas at the boundary and under 20 concurrent creates (nothing of a refused batch stored)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import orjson
import pytest

from batchd import exceptions, models
from batchd.api import keyring
from batchd.config.quotas import Quota
from batchd.store import Store, base
from tests.integration.factories import NOW, WS, make, ok

CONCURRENT = 20


def _key(workspace: str = WS, *, admin: bool = False, name: str = "ci") -> tuple[str, base.ApiKey]:
    return keyring.make(workspace=workspace, name=name, admin=admin, now=NOW, expires_at=None)


async def test_keys_are_kept_as_digests_listed_and_revoked(store: Store) -> None:
    secret, row = _key(admin=True)
    _, other = _key("team-b")
    await store.create_api_key(row)
    await store.create_api_key(other)
    found = await store.find_api_key(keyring.digest(secret))
    assert found == row and found.admin is True and found.digest != secret
    assert await store.find_api_key(keyring.digest(secret + "x")) is None
    assert sorted(k.id for k in await store.list_api_keys()) == sorted([row.id, other.id])
    assert [k.id for k in await store.list_api_keys("team-b")] == [other.id]

    revoked = await store.revoke_api_key(row.id, NOW + 5)
    assert revoked is not None and revoked.revoked_at == NOW + 5
    again = await store.revoke_api_key(row.id, NOW + 9)
    assert again is not None and again.revoked_at == NOW + 5  # the first revocation stands
    assert await store.revoke_api_key("key_unknown", NOW) is None
    assert (await store.find_api_key(row.digest)).revoked_at == NOW + 5  # type: ignore[union-attr]
    with pytest.raises(exceptions.StoreError):
        await store.create_api_key(row._replace(id="key_other"))  # the same digest twice


async def test_last_use_is_written_at_most_once_per_interval(store: Store) -> None:
    _, row = _key()
    await store.create_api_key(row)
    await store.touch_api_key(row.id, NOW + 1, every=60)
    await store.touch_api_key(row.id, NOW + 30, every=60)
    assert (await store.find_api_key(row.digest)).last_used_at == NOW + 1  # type: ignore[union-attr]
    await store.touch_api_key(row.id, NOW + 61, every=60)
    assert (await store.find_api_key(row.digest)).last_used_at == NOW + 61  # type: ignore[union-attr]


async def test_usage_counts_open_batches_queued_requests_and_kept_bytes(store: Store) -> None:
    assert await store.usage(WS) == [base.Usage(WS, 0, 0, 0)]
    first = await make(store, 3)
    second = await make(store, 2)
    size = sum(len(orjson.dumps({"i": i})) for i in range(3)) + sum(
        len(orjson.dumps({"i": i})) for i in range(2)
    )
    assert await store.usage(WS) == [base.Usage(WS, 2, 5, size)]
    claimed = await store.claim_requests("w", 1, now=NOW, lease=10)
    assert claimed[0].batch_id == first.id  # the claim's one request: the first batch's turn
    await store.complete_requests([ok(claimed[0])], now=NOW)
    assert (await store.usage(WS))[0].queued_requests == 4  # a request done no longer queues
    # Made after the claim, which shares itself among workspaces (store/shares.py).
    await make(store, 4, workspace="other")
    await store.cancel_batch(WS, second.id, NOW)  # pending ones canceled: the batch ends
    assert (await store.usage(WS))[0][:3] == (WS, 1, 2)
    await store.delete_batch(WS, second.id)
    assert (await store.usage(WS))[0].stored_bytes == size - 2 * len(orjson.dumps({"i": 0}))
    every = await store.usage()
    assert [u.workspace for u in every] == ["other", WS] and every[0].queued_requests == 4
    assert first.id


async def _create(store: Store, n: int, quota: Quota, workspace: str = WS) -> models.Batch:
    return await store.create_batch(
        workspace=workspace,
        custom_ids=[f"c{i}" for i in range(n)],
        params=[b'{"p":1}'] * n,
        now=NOW,
        expires_at=NOW + 100,
        quota=quota,
    )


async def test_quotas_hold_at_the_boundary_and_store_nothing_refused(store: Store) -> None:
    queued = Quota(queued_requests=10)
    await _create(store, 6, queued)
    await _create(store, 4, queued)  # exactly at the limit: accepted
    before = await store.usage(WS)
    with pytest.raises(exceptions.QuotaExceeded) as refused:
        await _create(store, 1, queued)
    assert refused.value.status == 429 and refused.value.retry_after > 0
    assert "quota_queued_requests" in refused.value.message
    assert await store.usage(WS) == before
    assert len((await store.list_batches(WS, limit=100))[0]) == 2
    await _create(store, 1, queued, workspace="other")  # another workspace's usage is its own

    batches = Quota(batches=2)
    with pytest.raises(exceptions.QuotaExceeded, match="quota_batches"):
        await _create(store, 1, batches)
    stored = Quota(stored_bytes=10 * 7 + 7)  # 7 bytes of params per request, 10 stored
    await _create(store, 1, stored)
    with pytest.raises(exceptions.QuotaExceeded, match="quota_stored_bytes"):
        await _create(store, 1, stored)


async def _race(create: Callable[[int], Awaitable[models.Batch]]) -> tuple[int, int]:
    outcomes = await asyncio.gather(*(create(i) for i in range(CONCURRENT)), return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, exceptions.QuotaExceeded)]
    made = [o for o in outcomes if isinstance(o, models.Batch)]
    assert len(refused) + len(made) == CONCURRENT, outcomes
    return len(made), len(refused)


async def test_twenty_concurrent_creates_never_pass_the_quota(store: Store) -> None:
    quota = Quota(queued_requests=25, batches=8)
    started = time.monotonic()
    made, refused = await _race(lambda i: _create(store, 3, quota))
    assert (made, refused) == (8, 12)
    assert await store.usage(WS) == [base.Usage(WS, 8, 24, 8 * 3 * 7)]
    made, refused = await _race(lambda i: _create(store, 1, quota, workspace=f"other-{i}"))
    assert made == CONCURRENT  # other workspaces are not held back
    assert time.monotonic() - started < 10


@pytest.mark.postgres
async def test_concurrent_creates_from_two_processes_share_one_quota(
    fleet: Callable[..., Awaitable[Store]],
) -> None:
    stores = [await fleet(), await fleet()]
    quota = Quota(queued_requests=30)
    made, _ = await _race(lambda i: _create(stores[i % 2], 4, quota))
    assert made == 7
    assert (await stores[0].usage(WS))[0].queued_requests == 28
