"""The store contract: every operation and invariant of ARCHITECTURE.md, per implementation."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path

import orjson
import pytest

from batchd import exceptions, models
from batchd.store import Store, base, layout, open_store
from tests.integration.factories import NOW, WS, lines, make, ok


async def test_create_and_get(store: Store) -> None:
    batch = await make(store, 3)
    got = await store.get_batch(WS, batch.id)
    assert got == batch
    assert got.request_counts == models.RequestCounts(processing=3)
    assert got.processing_status is models.ProcessingStatus.IN_PROGRESS
    with pytest.raises(exceptions.BatchNotFound):
        await store.get_batch("other", batch.id)
    with pytest.raises(exceptions.BatchNotFound):
        await store.get_batch(WS, "msgbatch_missing")


async def test_claim_leases_each_request_once_in_order(store: Store) -> None:
    batch = await make(store, 5)
    first = await store.claim_requests("w1", 3, now=NOW, lease=10)
    second = await store.claim_requests("w2", 10, now=NOW, lease=10)
    assert [r.index for r in first] == [0, 1, 2] and [r.index for r in second] == [3, 4]
    assert first[0].params == orjson.dumps({"i": 0}) and first[0].custom_id == "c0"
    assert first[0].batch_id == batch.id and first[0].expires_at == NOW + 100
    assert await store.claim_requests("w3", 10, now=NOW, lease=10) == []


async def test_claims_return_every_params_byte_for_byte(store: Store) -> None:
    params = [
        orjson.dumps({"text": "caf\u00e9 \u2014 \U0001f600 " * (i % 7), "n": i, "pad": "x" * (i * 37 % 3000)})
        for i in range(300)
    ]
    batch = await store.create_batch(
        workspace=WS, custom_ids=[f"c{i}" for i in range(300)], params=params, now=NOW, expires_at=NOW + 100
    )
    claimed = [r for _ in range(3) for r in await store.claim_requests("w", 128, now=NOW, lease=10)]
    assert [r.index for r in claimed] == list(range(300))
    assert [bytes(r.params) for r in claimed] == params
    assert {r.batch_id for r in claimed} == {batch.id} and claimed[299].custom_id == "c299"
    assert await store.complete_requests([ok(r) for r in claimed], now=NOW) == 300
    assert len(await lines(store, batch.id)) == 300


async def test_first_result_wins_and_counts_move(store: Store) -> None:
    batch = await make(store, 2)
    claimed = await store.claim_requests("w", 10, now=NOW, lease=10)
    assert await store.complete_requests([ok(claimed[0], "first")], now=NOW) == 1
    assert await store.complete_requests([ok(claimed[0], "second")], now=NOW) == 0
    got = await store.get_batch(WS, batch.id)
    assert got.request_counts == models.RequestCounts(processing=1, succeeded=1)
    assert got.processing_status is models.ProcessingStatus.IN_PROGRESS and got.ended_at is None
    err = models.Outcome(batch.id, 1, "c1", models.ResultType.ERRORED, b'{"type":"errored"}')
    assert await store.complete_requests([err, err], now=NOW + 1) == 1
    got = await store.get_batch(WS, batch.id)
    assert got.request_counts == models.RequestCounts(succeeded=1, errored=1)
    assert got.processing_status is models.ProcessingStatus.ENDED and got.ended_at == NOW + 1
    results = await lines(store, batch.id)
    assert sorted((r["custom_id"], r["result"]["type"]) for r in results) == [
        ("c0", "succeeded"),
        ("c1", "errored"),
    ]
    assert next(r for r in results if r["custom_id"] == "c0")["result"]["tag"] == "first"


async def test_results_only_after_end(store: Store) -> None:
    batch = await make(store, 1)
    with pytest.raises(exceptions.InvalidBatchState):
        await lines(store, batch.id)


async def test_cancel_turns_pending_into_canceled(store: Store) -> None:
    batch = await make(store, 4)
    running = await store.claim_requests("w", 1, now=NOW, lease=10)
    canceled = await store.cancel_batch(WS, batch.id, NOW + 1)
    assert canceled.processing_status is models.ProcessingStatus.CANCELING
    assert canceled.cancel_initiated_at == NOW + 1
    assert canceled.request_counts == models.RequestCounts(processing=1, canceled=3)
    assert await store.claim_requests("w", 10, now=NOW, lease=10) == []
    assert (await store.cancel_batch(WS, batch.id, NOW + 2)).cancel_initiated_at == NOW + 1  # idempotent
    await store.complete_requests([ok(running[0])], now=NOW + 3)
    ended = await store.get_batch(WS, batch.id)
    assert ended.processing_status is models.ProcessingStatus.ENDED
    assert ended.request_counts == models.RequestCounts(succeeded=1, canceled=3)
    with pytest.raises(exceptions.InvalidBatchState):
        await store.cancel_batch(WS, batch.id, NOW + 4)
    assert len(await lines(store, batch.id)) == 4


async def test_cancel_with_nothing_running_ends_at_once(store: Store) -> None:
    batch = await make(store, 2)
    canceled = await store.cancel_batch(WS, batch.id, NOW)
    assert canceled.processing_status is models.ProcessingStatus.ENDED
    assert canceled.ended_at == NOW


async def test_delete_only_when_ended(store: Store) -> None:
    batch = await make(store, 1)
    with pytest.raises(exceptions.InvalidBatchState):
        await store.delete_batch(WS, batch.id)
    await store.cancel_batch(WS, batch.id, NOW)
    with pytest.raises(exceptions.BatchNotFound):
        await store.delete_batch("other", batch.id)
    await store.delete_batch(WS, batch.id)
    with pytest.raises(exceptions.BatchNotFound):
        await store.get_batch(WS, batch.id)


async def test_expiry_pending_then_running_after_grace(store: Store) -> None:
    batch = await make(store, 3, life=10)
    running = await store.claim_requests("w", 1, now=NOW, lease=100)
    assert await store.expire_due(now=NOW + 5, grace=2) == 0
    assert await store.expire_due(now=NOW + 10, grace=2) == 2
    mid = await store.get_batch(WS, batch.id)
    assert mid.request_counts == models.RequestCounts(processing=1, expired=2)
    assert mid.processing_status is models.ProcessingStatus.IN_PROGRESS
    assert await store.claim_requests("w", 10, now=NOW + 10, lease=10) == []
    assert await store.expire_due(now=NOW + 12, grace=2) == 1
    done = await store.get_batch(WS, batch.id)
    assert done.request_counts == models.RequestCounts(expired=3)
    assert done.processing_status is models.ProcessingStatus.ENDED
    assert await store.complete_requests([ok(running[0])], now=NOW + 13) == 0  # too late
    assert {r["result"]["type"] for r in await lines(store, batch.id)} == {"expired"}


async def test_lapsed_leases_return_to_pending(store: Store) -> None:
    await make(store, 2)
    held = await store.claim_requests("dead", 2, now=NOW, lease=10)
    assert await store.heartbeat("dead", [r.key for r in held], now=NOW + 5, lease=10) == 2
    assert await store.recover_leases(now=NOW + 12) == 0  # extended to NOW + 15
    assert await store.recover_leases(now=NOW + 16) == 2
    again = await store.claim_requests("alive", 10, now=NOW + 16, lease=10)
    assert [r.index for r in again] == [0, 1]
    assert await store.recover_leases(now=NOW + 17, everything=True) == 2


async def test_heartbeat_renews_only_the_leases_named(store: Store) -> None:
    """A claim whose answer never reached the worker is not renewed: it lapses and runs again."""
    await make(store, 3)
    claimed = await store.claim_requests("w", 3, now=NOW, lease=10)
    assert len({r.key for r in claimed}) == 3
    assert await store.heartbeat("w", [claimed[0].key], now=NOW + 5, lease=10) == 1
    assert await store.heartbeat("other", [claimed[1].key], now=NOW + 5, lease=10) == 0
    assert await store.heartbeat("w", [], now=NOW + 5, lease=10) == 0
    assert await store.recover_leases(now=NOW + 12) == 2  # the two not renewed
    again = await store.claim_requests("w2", 10, now=NOW + 12, lease=10)
    assert sorted(r.index for r in again) == sorted(r.index for r in claimed[1:])


async def test_archival_drops_results_keeps_batch(store: Store) -> None:
    batch = await make(store, 1)
    claimed = await store.claim_requests("w", 1, now=NOW, lease=10)
    await store.complete_requests([ok(claimed[0])], now=NOW)
    assert await store.archive_due(now=NOW + 50, retention=100) == 0
    assert await store.archive_due(now=NOW + 100, retention=100) == 1
    got = await store.get_batch(WS, batch.id)
    assert got.archived_at == NOW + 100 and got.request_counts.succeeded == 1
    with pytest.raises(exceptions.BatchNotFound, match="archived"):
        await lines(store, batch.id)
    assert await store.archive_due(now=NOW + 200, retention=100) == 0


async def test_list_pages_newest_first_both_ways(store: Store) -> None:
    ids = [(await make(store, 1)).id for _ in range(5)]
    await make(store, 1, workspace="other")
    newest = list(reversed(ids))
    page, more = await store.list_batches(WS, limit=2)
    assert [b.id for b in page] == newest[:2] and more
    page, more = await store.list_batches(WS, after_id=newest[1], limit=2)
    assert [b.id for b in page] == newest[2:4] and more
    page, more = await store.list_batches(WS, after_id=newest[3], limit=2)
    assert [b.id for b in page] == newest[4:] and not more
    page, more = await store.list_batches(WS, before_id=newest[4], limit=2)
    assert [b.id for b in page] == newest[2:4] and more
    page, more = await store.list_batches(WS, before_id=newest[1], limit=2)
    assert [b.id for b in page] == newest[:1] and not more
    with pytest.raises(exceptions.BatchNotFound):
        await store.list_batches("other", after_id=ids[0])


async def test_list_page_edges(store: Store) -> None:
    assert await store.list_batches(WS) == ([], False)  # an empty workspace
    ids = [(await make(store, 1)).id for _ in range(3)]
    newest = list(reversed(ids))
    page, more = await store.list_batches(WS, limit=3)
    assert [b.id for b in page] == newest and not more  # exactly the limit: nothing more
    assert await store.list_batches(WS, after_id=newest[-1]) == ([], False)  # past the oldest
    assert await store.list_batches(WS, before_id=newest[0]) == ([], False)  # past the newest
    walked, cursor = [], None  # one at a time, then back
    while True:
        page, more = await store.list_batches(WS, after_id=cursor, limit=1)
        walked += [b.id for b in page]
        if not more:
            break
        cursor = page[-1].id
    assert walked == newest
    back, cursor = [], newest[-1]
    while True:
        page, more = await store.list_batches(WS, before_id=cursor, limit=1)
        back += [b.id for b in page]
        if not more:
            break
        cursor = page[0].id
    assert back == list(reversed(newest[:-1]))
    page, _ = await store.list_batches(WS, after_id=newest[0], limit=10)
    assert [b.request_counts for b in page] == [models.RequestCounts(processing=1)] * 2  # whole batches
    with pytest.raises(exceptions.BatchNotFound):
        await store.list_batches("other", before_id=ids[0])  # a cursor from another workspace
    await store.cancel_batch(WS, ids[0], NOW)
    await store.delete_batch(WS, ids[0])
    with pytest.raises(exceptions.BatchNotFound):
        await store.list_batches(WS, after_id=ids[0])  # a cursor deleted since


async def test_cancel_and_delete_transitions(store: Store) -> None:
    batch = await make(store, 2)
    with pytest.raises(exceptions.BatchNotFound):
        await store.cancel_batch("other", batch.id, NOW)
    (running,) = await store.claim_requests("w", 1, now=NOW, lease=10)
    canceled = await store.cancel_batch(WS, batch.id, NOW)
    assert canceled.processing_status is models.ProcessingStatus.CANCELING
    with pytest.raises(exceptions.InvalidBatchState, match="still canceling"):
        await store.delete_batch(WS, batch.id)  # a request still runs
    await store.complete_requests([ok(running)], now=NOW)
    assert await store.archive_due(now=NOW + 100, retention=100) == 1
    await store.delete_batch(WS, batch.id)  # ended and archived: still deletable
    for read in (store.get_batch(WS, batch.id), lines(store, batch.id), store.list_results(WS, batch.id)):
        with pytest.raises(exceptions.BatchNotFound):
            await read
    with pytest.raises(exceptions.BatchNotFound):
        await store.delete_batch(WS, batch.id)


async def test_one_write_moves_the_counts_of_each_of_its_batches(store: Store) -> None:
    a, b, gone = await make(store, 3), await make(store, 2), await make(store, 1)
    claimed = await store.claim_requests("w", 10, now=NOW, lease=10)
    await store.cancel_batch(WS, gone.id, NOW)
    (late,) = [r for r in claimed if r.batch_id == gone.id]
    await store.complete_requests([ok(late)], now=NOW)
    await store.delete_batch(WS, gone.id)
    kinds = [models.ResultType.SUCCEEDED, models.ResultType.ERRORED, models.ResultType.SUCCEEDED]
    outcomes = [
        models.Outcome(r.batch_id, r.index, r.custom_id, kind, orjson.dumps({"type": kind}))
        for r in claimed
        if r.batch_id != gone.id
        for kind in [kinds[r.index]]
    ]
    outcomes.append(ok(late))  # of a batch deleted since: not recorded
    assert await store.complete_requests(outcomes, now=NOW + 1) == 5
    got_a, got_b = await store.get_batch(WS, a.id), await store.get_batch(WS, b.id)
    assert got_a.request_counts == models.RequestCounts(succeeded=2, errored=1)
    assert got_b.request_counts == models.RequestCounts(succeeded=1, errored=1)
    assert got_a.ended_at == got_b.ended_at == NOW + 1


async def test_concurrent_claims_never_share_a_request(store: Store) -> None:
    await make(store, 500)
    claims = await asyncio.gather(*(store.claim_requests(f"w{i}", 37, now=NOW, lease=10) for i in range(20)))
    keys = [(r.batch_id, r.index) for c in claims for r in c]
    assert len(keys) == len(set(keys)) == 500


async def test_results_stream_in_chunks_with_one_line_each(store: Store) -> None:
    batch = await make(store, 10_000)
    while claimed := await store.claim_requests("w", 1000, now=NOW, lease=10):
        await store.complete_requests([ok(r) for r in claimed], now=NOW)
    chunks = [c async for c in store.iter_results(WS, batch.id)]
    assert len(chunks) >= 2  # streamed, not built whole
    got = [orjson.loads(line)["custom_id"] for c in chunks for line in c.splitlines()]
    assert sorted(got) == sorted(f"c{i}" for i in range(10_000))


async def test_list_results_pages_and_filters(store: Store) -> None:
    batch = await make(store, 5)
    claimed = await store.claim_requests("w", 2, now=NOW, lease=10)
    await store.complete_requests([ok(claimed[0])], now=NOW)
    page, more = await store.list_results(WS, batch.id, limit=3)
    assert [e.index for e in page] == [0, 1, 2] and more
    assert page[0].result_type is models.ResultType.SUCCEEDED and page[0].line
    assert orjson.loads(page[0].line)["custom_id"] == "c0"
    assert page[1].state is models.RequestState.RUNNING and page[1].line is None
    assert page[2].state is models.RequestState.PENDING and page[2].result_type is None
    page, more = await store.list_results(WS, batch.id, after_index=2, limit=3)
    assert [e.index for e in page] == [3, 4] and not more
    page, _ = await store.list_results(WS, batch.id, custom_id="c4")
    assert [e.custom_id for e in page] == ["c4"]
    page, _ = await store.list_results(WS, batch.id, result_type=models.ResultType.SUCCEEDED)
    assert [e.index for e in page] == [0]
    with pytest.raises(exceptions.BatchNotFound):
        await store.list_results("other", batch.id)
    assert await store.list_results(WS, batch.id, after_index=4) == ([], False)  # past the last
    page, more = await store.list_results(WS, batch.id, after_index=0, limit=1)
    assert [e.index for e in page] == [1] and more
    page, _ = await store.list_results(WS, batch.id, custom_id="c1", result_type=models.ResultType.SUCCEEDED)
    assert page == []  # both filters hold at once: c1 has no result yet


async def test_list_params_gives_the_created_params_of_results_of_some_types(store: Store) -> None:
    batch = await make(store, 6)
    claimed = await store.claim_requests("w", 4, now=NOW, lease=10)
    failed = models.Outcome(batch.id, 1, "c1", models.ResultType.ERRORED, orjson.dumps({"type": "errored"}))
    await store.complete_requests([ok(claimed[0]), failed, ok(claimed[3])], now=NOW)
    await store.cancel_batch(WS, batch.id, NOW)  # c2 (running) stays, c4 and c5 become canceled
    wanted = [models.ResultType.ERRORED, models.ResultType.CANCELED]
    page, more = await store.list_params(WS, batch.id, result_types=wanted)
    assert [(e.index, e.custom_id) for e in page] == [(1, "c1"), (4, "c4"), (5, "c5")] and not more
    assert [orjson.loads(e.params) for e in page] == [{"i": 1}, {"i": 4}, {"i": 5}]
    page, more = await store.list_params(WS, batch.id, result_types=wanted, limit=1)
    assert [e.index for e in page] == [1] and more
    page, more = await store.list_params(WS, batch.id, result_types=wanted, after_index=1, limit=1)
    assert [e.index for e in page] == [4] and more
    assert await store.list_params(WS, batch.id, result_types=[models.ResultType.EXPIRED]) == ([], False)
    with pytest.raises(exceptions.BatchNotFound):
        await store.list_params("other", batch.id, result_types=wanted)


def session(digest: str, *, at: float = NOW, life: float = 100.0) -> base.Session:
    """A dashboard session made at `at`, ending `life` seconds later."""
    return base.Session(digest, WS, "proof-" + digest, at, at + life, at, None)


async def test_sessions_are_kept_touched_and_revoked(store: Store) -> None:
    made = session("a")
    await store.create_session(made, idle=50)
    assert await store.get_session("a") == made
    assert await store.get_session("b") is None
    with pytest.raises(exceptions.StoreError):
        await store.create_session(made, idle=50)  # ids are unique
    await store.touch_session("a", NOW + 10)
    await store.touch_session("a", NOW + 5)  # a late touch never moves last_seen_at back
    touched = await store.get_session("a")
    assert touched == made._replace(last_seen_at=NOW + 10)
    assert await store.revoke_session("a", NOW + 20)
    assert await store.get_session("a") == touched._replace(revoked_at=NOW + 20)
    assert not await store.revoke_session("a", NOW + 21)  # ended already: the first end stays
    assert (await store.get_session("a")) == touched._replace(revoked_at=NOW + 20)
    assert not await store.revoke_session("b", NOW)


async def test_a_new_session_drops_the_ended_ones(store: Store) -> None:
    for digest in ("revoked", "idle", "used"):
        await store.create_session(session(digest), idle=50)
    await store.create_session(session("expired", life=10), idle=50)
    await store.revoke_session("revoked", NOW + 1)
    await store.touch_session("used", NOW + 30)
    await store.create_session(session("new", at=NOW + 60), idle=50)
    # At NOW + 60: "expired" ended at NOW + 10, "idle" was last seen 60 s ago (over 50).
    found = {d: await store.get_session(d) for d in ("revoked", "idle", "used", "expired", "new")}
    assert {d for d, s in found.items() if s is not None} == {"used", "new"}


async def test_reopen_keeps_everything(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reopen.db'}"
    s = open_store(url)
    await s.open()
    batch = await make(s, 2)
    await s.aclose()
    s2 = open_store(url)
    await s2.open()
    assert (await s2.get_batch(WS, batch.id)).request_counts.processing == 2
    await s2.aclose()


async def test_one_process_per_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    first = open_store(url)
    await first.open()
    second = open_store(url)
    with pytest.raises(exceptions.ConfigError, match="in use"):
        await second.open()
    await first.aclose()


async def test_results_come_in_request_order_whatever_order_they_were_written_in(store: Store) -> None:
    n = layout.RESULTS_PAGE * 2 + 7  # three pages, the last one short
    batch = await make(store, n)
    claimed = []
    while more := await store.claim_requests("w", 4096, now=NOW, lease=10):
        claimed += more
    random.Random(12).shuffle(claimed)
    for i in range(0, n, 997):
        await store.complete_requests([ok(r) for r in claimed[i : i + 997]], now=NOW)
    got = [line["custom_id"] for line in await lines(store, batch.id)]
    assert got == [f"c{i}" for i in range(n)]


async def test_sqlite_pages_whose_rows_come_out_of_order_are_put_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite does not say in what order group_concat takes its rows: here they come last key first,
    and the page is still in key order (read again as rows)."""
    from batchd.store.sqlite import store as sqlite_store

    reversed_page = sqlite_store.Q["results_page"].replace(
        "FROM (SELECT key, line FROM results WHERE key > ?1 AND key <= ?2 ORDER BY key LIMIT ?3)",
        "FROM (SELECT * FROM (SELECT key, line FROM results WHERE key > ?1 AND key <= ?2"
        " ORDER BY key LIMIT ?3) ORDER BY key DESC)",
    )
    assert reversed_page != sqlite_store.Q["results_page"]
    monkeypatch.setitem(sqlite_store.Q, "results_page", reversed_page)
    reread: list[int] = []

    def rows(conn: sqlite3.Connection, last: int, high: int) -> tuple[bytes, int]:
        reread.append(last)
        return results_rows(conn, last, high)

    results_rows = sqlite_store._results_rows
    monkeypatch.setattr(sqlite_store, "_results_rows", rows)
    s = open_store(f"sqlite:///{tmp_path / 'order.db'}")
    await s.open()
    try:
        n = layout.RESULTS_PAGE + 3
        batch = await make(s, n)
        while claimed := await s.claim_requests("w", 4096, now=NOW, lease=10):
            await s.complete_requests([ok(r) for r in claimed], now=NOW)
        got = [line["custom_id"] for line in await lines(s, batch.id)]
        assert got == [f"c{i}" for i in range(n)]
        assert len(reread) == 2  # both pages came reversed, and were read again
    finally:
        await s.aclose()
    assert sqlite_store.rising_end("1,2,3", 3) == 3 and sqlite_store.rising_end("3,7,9", 3) == 9
    assert sqlite_store.rising_end("3,2,1", 3) is None and sqlite_store.rising_end("1,3,3", 3) is None
