"""PostgreSQL only: a fleet worker's liveness lock. A dead worker's requests are taken over once its
lock has been free for `takeover_after`, a live one's never; a database outage costs no claim."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import urllib.parse
from collections.abc import AsyncIterator

import asyncpg
import orjson
import pytest

from batchd import config, models
from batchd.engine import Dispatcher
from batchd.engine.router import Router
from batchd.store import Store, open_store
from batchd.store.postgres import PostgresStore
from batchd.store.postgres.liveness import WorkerLock
from tests.integration.backends_upstream import Upstream
from tests.integration.factories import NOW, WS, lines, make
from tests.integration.test_postgres_faults import Proxy
from tests.integration.test_postgres_store import Fleet

pytestmark = pytest.mark.postgres

GRACE = 0.5  # takeover_after in the store-level tests, seconds


async def take(lock: WorkerLock, worker: str) -> str:
    identity = await lock.take(worker)
    assert identity is not None and identity.startswith(worker + "/")
    return identity


async def end_session(url: str, identity: str) -> None:
    """Ends the database session holding `identity`'s lock, as PostgreSQL does when the process dies."""
    from batchd.store.postgres import locks

    key = locks.worker_key(identity)
    assert key is not None
    conn = await asyncpg.connect(url)
    try:
        ended = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory'"
            " AND objsubid = 1 AND (classid::bigint << 32 | objid::bigint) = $1",
            key,
        )
        assert ended == 1
    finally:
        await conn.close()


async def sweep_until(store: PostgresStore, *, now: float, timeout: float = 10.0) -> tuple[int, float]:
    """Sweeps until one returns requests: (how many, seconds it took)."""
    start = time.monotonic()
    while not (n := await store.recover_leases(now=now, takeover_after=GRACE)):
        assert time.monotonic() - start < timeout, "nothing was taken over"
        await asyncio.sleep(0.05)
    return n, time.monotonic() - start


async def test_a_dead_workers_requests_are_taken_over_once_its_lock_is_free_long_enough(
    fleet: Fleet, pg_url: str
) -> None:
    a, b = await fleet(), await fleet()
    await make(b, 5)
    dead = await take(a.worker_lock, "host:1:a")
    held = await a.claim_requests(dead, 3, now=NOW, lease=600)
    await end_session(pg_url, dead)  # `kill -9`: the session ends, its lock with it

    n, waited = await sweep_until(b, now=NOW)  # leases far from lapsing
    assert n == 3 and waited >= GRACE
    again = {r.key: r.claims for r in await b.claim_requests("host:2:b/1", 10, now=NOW, lease=600)}
    assert {again[r.key] for r in held} == {1}  # taken over, and counted as a crash


async def test_a_live_workers_requests_are_never_taken_over(fleet: Fleet) -> None:
    a, b = await fleet(), await fleet()
    await make(b, 3)
    alive = await take(a.worker_lock, "host:1:a")
    assert len(await a.claim_requests(alive, 3, now=NOW, lease=600)) == 3
    deadline = time.monotonic() + 4 * GRACE
    while time.monotonic() < deadline:
        assert await b.recover_leases(now=NOW, takeover_after=GRACE) == 0
        assert await a.worker_lock.confirm()
        await asyncio.sleep(0.05)


async def test_a_worker_that_takes_a_new_lock_in_time_keeps_its_requests_uncounted(
    fleet: Fleet, pg_url: str
) -> None:
    """The database restarted: the session and its lock are gone, the leases lapsed meanwhile. A
    sweep spares the requests while the worker may be reconnecting; its new lock and heartbeat keep
    them, uncounted. (Before liveness the lapsed leases were recovered and counted as a crash.)"""
    a, b = await fleet(), await fleet()
    await make(b, 4)
    first = await take(a.worker_lock, "host:1:a")
    held = await a.claim_requests(first, 4, now=NOW, lease=1)
    await end_session(pg_url, first)
    late = NOW + 30  # every lease has lapsed
    assert await b.recover_leases(now=late, takeover_after=GRACE) == 0  # just seen free: spared
    assert not await a.worker_lock.confirm()

    second = await take(a.worker_lock, "host:1:a")
    assert second != first
    assert await a.heartbeat(second, [r.key for r in held], now=late, lease=600) == 4  # moved to it
    await asyncio.sleep(2 * GRACE)
    assert await b.recover_leases(now=late, takeover_after=GRACE) == 0
    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch("SELECT worker, claims FROM requests WHERE state = 1")
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [(second, 1)] * 4


async def test_released_requests_return_uncounted_unless_claimed_again(fleet: Fleet) -> None:
    a, b = await fleet(), await fleet()
    await make(a, 4)
    identity = await take(a.worker_lock, "host:1:a")
    held = await a.claim_requests(identity, 4, now=NOW, lease=1)
    given_up = {r.key: r.claims + 1 for r in held}
    # Two were taken from this worker meanwhile (it was cut off) and claimed by another process.
    assert await b.recover_leases(now=NOW + 5) == 4  # lapsed leases, an old-style sweep
    other = await b.claim_requests("host:2:b/1", 2, now=NOW + 5, lease=600)
    assert await a.worker_lock.release(identity, given_up) == 0  # pending or another's: left alone
    mine = await a.claim_requests(identity, 2, now=NOW + 5, lease=600)
    stale = {r.key: r.claims for r in held if r.key in {m.key for m in mine}}  # an earlier claim's count
    assert await a.worker_lock.release(identity, stale) == 0
    assert await a.worker_lock.release(identity, {r.key: r.claims + 1 for r in mine}) == 2
    again = await b.claim_requests("host:2:b/1", 10, now=NOW + 5, lease=600)
    assert sorted(r.key for r in again) == sorted(r.key for r in mine)
    assert {r.claims for r in again} == {1}  # the released claim did not count
    assert {r.claims for r in other} == {1}


async def test_claimers_without_a_lock_keep_leases_only(fleet: Fleet) -> None:
    """Mid-upgrade, a batchd from before liveness claims without a lock: its requests return only
    when their leases lapse, whatever the sweeps find."""
    a = await fleet()
    await make(a, 2)
    await a.claim_requests("host:9:old", 2, now=NOW, lease=60)
    await asyncio.sleep(2 * GRACE)
    assert await a.recover_leases(now=NOW + 30, takeover_after=GRACE) == 0
    assert await a.recover_leases(now=NOW + 61, takeover_after=GRACE) == 2


# -- real dispatchers, through a relay to PostgreSQL that fails on demand ---------------------------


class Outage(Proxy):
    """The relay to PostgreSQL, able to go down: every connection through it is cut at once (both
    ends, as a database restart does) and new ones are refused until it comes back."""

    async def start(self) -> int:
        self.listen_port = await super().start()
        return self.listen_port

    async def down(self) -> None:
        self.server.close()
        for client, up, _ in self.live:
            client.transport.abort()
            up.transport.abort()
        self.live.clear()

    async def up(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.listen_port)


@dataclasses.dataclass
class Rig:
    """A database reached directly (`url`) or through the relay (`via`), and a loopback upstream."""

    url: str
    via: str
    relay: Outage
    upstream: Upstream

    def settings(self, database_url: str, **values: object) -> config.Settings:
        """Settings of a dispatcher on `database_url` whose model `up-model` calls the upstream."""
        route = {"model": "up-*", "backend": "anthropic", "base_url": self.upstream.url, "timeout": "30s"}
        routes = orjson.dumps([route]).decode()
        return config.load({**values, "database_url": database_url, "routes": routes}, environ={})

    @contextlib.asynccontextmanager
    async def engines(self, *settings: config.Settings) -> AsyncIterator[list[Dispatcher]]:
        """A started dispatcher per settings, each on a store of its own (a process each)."""
        stores = [open_store(s.store_url) for s in settings]
        routers = [Router.from_settings(s) for s in settings]
        engines = [
            Dispatcher(s, store, router) for s, store, router in zip(settings, stores, routers, strict=True)
        ]
        try:
            for store, engine in zip(stores, engines, strict=True):
                await store.open()
                await engine.start()
            yield engines
        finally:
            for store, router, engine in zip(stores, routers, engines, strict=True):
                await engine.stop()
                await store.aclose()
                await router.aclose()


@pytest.fixture
async def rig(pg_url: str) -> AsyncIterator[Rig]:
    upstream = Upstream().start()
    parts = urllib.parse.urlsplit(pg_url)
    relay = Outage(parts.port or 5432)
    via = parts._replace(netloc=f"{parts.username}@127.0.0.1:{await relay.start()}").geturl()
    yield Rig(pg_url, via, relay, upstream)
    relay.server.close()
    upstream.stop()


def params(text: str) -> bytes:
    return orjson.dumps(
        {"model": "up-model", "max_tokens": 8, "messages": [{"role": "user", "content": text}]}
    )


async def batch_of(store: Store, texts: list[str]) -> models.Batch:
    """A batch whose request i says texts[i]; custom_ids are the texts' first words."""
    return await store.create_batch(
        workspace=WS,
        custom_ids=[t.split()[0] for t in texts],
        params=[params(t) for t in texts],
        now=time.time(),
        expires_at=time.time() + 600,
    )


async def until_ended(store: Store, batch_id: str, timeout: float = 60.0) -> models.Batch:
    deadline = time.monotonic() + timeout
    while (got := await store.get_batch(WS, batch_id)).processing_status != "ended":
        assert time.monotonic() < deadline, got
        await asyncio.sleep(0.1)
    return got


async def until_called(upstream: Upstream, n: int) -> None:
    """Until the upstream has received `n` calls (each batch's calls are in flight)."""
    deadline = time.monotonic() + 10
    while sum(upstream.seen.values()) < n:
        assert time.monotonic() < deadline, upstream.seen
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("down_for", "stall", "reruns"),
    [(1.5, 3, False), (5.5, 8, True)],
    ids=["shorter-than-half-takeover", "longer-than-half-takeover"],
)
async def test_a_database_outage_longer_than_the_lease_charges_no_claim(
    rig: Rig, down_for: float, stall: int, reruns: bool
) -> None:
    """Two dispatchers run a batch through a relay to PostgreSQL that goes down for longer than the
    lease, with one claim allowed per request (max_claims=1): a claim counted for the outage would
    error the request. When the database is back, a sweep gets there before the workers (it used
    to return every lapsed lease to pending, counted as a crash). Cut off for less than half of
    takeover_after, the calls in flight finish and nothing runs twice; for longer, the workers
    give their requests up in time and they run again, uncounted."""
    settings = rig.settings(
        rig.via,
        lease="1s",
        takeover_after="8s",  # the workers give their requests up after 4 s cut off
        max_claims=1,
        maintenance_interval="0.2s",
        concurrency=8,
    )
    n = 16
    texts = [f"r{i} stall={stall}x1" for i in range(n)]  # each first call takes `stall` seconds
    direct = open_store(rig.url)  # a process that reaches the database first once it is back
    await direct.open()
    try:
        batch = await batch_of(direct, texts)
        async with rig.engines(settings, settings):
            await until_called(rig.upstream, n)
            await rig.relay.down()
            await asyncio.sleep(down_for)
            await rig.relay.up()
            assert await direct.recover_leases(now=time.time(), takeover_after=8.0) == 0
            got = await until_ended(direct, batch.id)
        assert got.request_counts == models.RequestCounts(succeeded=n), got.request_counts
        assert [line["custom_id"] for line in await lines(direct, batch.id)] == [f"r{i}" for i in range(n)]
    finally:
        await direct.aclose()
    calls = [rig.upstream.seen[t] for t in texts]
    if reruns:
        assert set(calls) <= {1, 2} and 2 in calls, calls  # given up in time, run again once
    else:
        assert calls == [1] * n  # nothing was run twice


async def test_a_worker_cut_off_alone_gives_its_requests_up_before_they_are_taken_over(rig: Rig) -> None:
    """A network partition: worker A loses the database while B keeps it. A stops its calls before
    B may take its requests over, so no request ever runs in two live workers at once; B runs them
    within seconds of the cut, and every request ends with one result."""
    common = {"takeover_after": "4s", "maintenance_interval": "0.2s", "concurrency": 4}
    n = 8
    texts = [f"p{i} stall=6x1" for i in range(n)]
    async with rig.engines(rig.settings(rig.via, **common), rig.settings(rig.url, **common)) as (a, b):
        batch = await batch_of(b.store, texts)
        await until_called(rig.upstream, n)
        conn = await asyncpg.connect(rig.url)
        try:
            rows = await conn.fetch("SELECT custom_id, worker FROM requests WHERE state = 1")
        finally:
            await conn.close()
        a_texts = [f"{c} stall=6x1" for c, w in rows if w.startswith(a.worker_id + "/")]
        assert a_texts and a.inflight == len(a_texts)

        await rig.relay.down()  # A alone is cut off, and stays so
        cut = time.monotonic()
        gave_up = None
        while not all(len(rig.upstream.arrivals[t]) > 1 for t in a_texts):
            if gave_up is None and a.inflight == 0:
                gave_up = time.monotonic()
            assert time.monotonic() - cut < 15, "A's requests were not taken over"
            await asyncio.sleep(0.01)
        rerun = min(rig.upstream.arrivals[t][1] for t in a_texts)
        assert gave_up is not None and gave_up < rerun  # never running in A and B at once
        assert gave_up - cut < 2.5  # half of takeover_after after its last confirmation, at most
        assert rerun - cut < 4 + 2  # B took over once it had seen A's lock free for 4 s
        got = await until_ended(b.store, batch.id, timeout=30)
        assert got.request_counts == models.RequestCounts(succeeded=n)
        await rig.relay.up()


async def test_a_stopped_worker_gives_its_unfinished_requests_back_at_once_uncounted(pg_url: str) -> None:
    """SIGTERM: what the worker could not finish in its grace is pending again as it stops, its claim
    not counted as a crash (it used to wait out the lease, and count)."""
    settings = config.load({"database_url": pg_url, "sim_latency": "30s", "concurrency": 4}, environ={})
    store = open_store(pg_url)
    router = Router.from_settings(settings)
    await store.open()
    try:
        await batch_of(store, [f"s{i}" for i in range(6)])
        engine = Dispatcher(settings, store, router)
        await engine.start()
        deadline = time.monotonic() + 10
        while engine.inflight < 4:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await engine.stop(grace=0.1)
        conn = await asyncpg.connect(pg_url)
        try:
            rows = await conn.fetch("SELECT state, claims, worker FROM requests ORDER BY key")
        finally:
            await conn.close()
        assert [tuple(r) for r in rows] == [(0, 0, None)] * 6
    finally:
        await store.aclose()
        await router.aclose()
