"""SQLiteStore: the embedded default store."""

from __future__ import annotations

import functools
import sqlite3
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import orjson

from batchd import exceptions, models
from batchd.store import layout, queries
from batchd.store.base import RequestEntry
from batchd.store.sqlite.db import Database

Q = queries.load("sqlite")
INSERT_ROWS = 256  # most result rows per INSERT statement (3 parameters each)
CREATE_CACHE_KIB = 8192  # writer page cache during a create: bounds its memory above the body's


class SQLiteStore:
    #: Seconds the engine lets results gather before it writes them in one commit. Each commit is
    #: a transaction and two hand-offs with the writer thread: at a small engine's pace (hundreds
    #: of results a second), committing every 10 ms cost ~15% of batchd's CPU per request (340 vs
    #: 290 µs against a loopback upstream answering in 25 ms), CPU that a shared host takes from the
    #: engine. 50 ms is still far below any client's polling interval.
    commit_interval = 0.05

    def __init__(self, path: str) -> None:
        self.db = Database(path)

    async def open(self) -> None:
        await self.db.open()

    async def aclose(self) -> None:
        await self.db.aclose()

    async def __aenter__(self) -> SQLiteStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- API side -------------------------------------------------------------------------

    async def create_batch(
        self,
        *,
        workspace: str,
        custom_ids: Sequence[str],
        params: Sequence[bytes | memoryview],
        now: float,
        expires_at: float,
    ) -> models.Batch:
        batch_id = models.new_batch_id()
        return await self.db.write(self._create, batch_id, workspace, custom_ids, params, now, expires_at)

    def _create(
        self,
        batch_id: str,
        workspace: str,
        custom_ids: Sequence[str],
        params: Sequence[bytes | memoryview],
        now: float,
        expires_at: float,
    ) -> models.Batch:
        with self.db.cache_limit(CREATE_CACHE_KIB), self.db.transaction(durable=True) as conn:
            cur = conn.execute(Q["insert_batch"], (batch_id, workspace, now, expires_at, len(custom_ids)))
            base = (cur.lastrowid or 0) << layout.KEY_BITS
            keys = range(base, base + len(custom_ids))
            conn.executemany(Q["insert_request"], zip(keys, custom_ids, strict=True))
            conn.executemany(Q["insert_params"], zip(keys, params, strict=True))
        return models.Batch(
            id=batch_id,
            workspace=workspace,
            processing_status=models.ProcessingStatus.IN_PROGRESS,
            request_counts=models.RequestCounts(processing=len(custom_ids)),
            created_at=now,
            expires_at=expires_at,
        )

    async def get_batch(self, workspace: str, batch_id: str) -> models.Batch:
        row = await self.db.read_inline(_fetch_batch, workspace, batch_id)
        return layout.batch(row)

    async def list_batches(
        self,
        workspace: str,
        *,
        after_id: str | None = None,
        before_id: str | None = None,
        limit: int = 20,
    ) -> tuple[list[models.Batch], bool]:
        rows, has_more = await self.db.read_inline(_list, workspace, after_id, before_id, limit)
        return [layout.batch(r) for r in rows], has_more

    async def cancel_batch(self, workspace: str, batch_id: str, now: float) -> models.Batch:
        return await self.db.write(self._cancel, workspace, batch_id, now)

    def _cancel(self, workspace: str, batch_id: str, now: float) -> models.Batch:
        with self.db.transaction(durable=True) as conn:
            row = _fetch_batch(conn, workspace, batch_id)
            if row[3] == models.ProcessingStatus.ENDED:
                raise exceptions.InvalidBatchState(
                    f"message batch {batch_id} has already ended and cannot be canceled"
                )
            if row[3] == models.ProcessingStatus.IN_PROGRESS:
                conn.execute(Q["set_canceling"], (now, row[0]))
                _close_state(conn, row[0], models.RequestState.PENDING, models.ResultType.CANCELED, now)
            return layout.batch(_fetch_batch(conn, workspace, batch_id))

    async def delete_batch(self, workspace: str, batch_id: str) -> None:
        await self.db.write(self._delete, workspace, batch_id)

    def _delete(self, workspace: str, batch_id: str) -> None:
        with self.db.transaction(durable=True) as conn:
            row = _fetch_batch(conn, workspace, batch_id)
            if row[3] != models.ProcessingStatus.ENDED:
                raise exceptions.InvalidBatchState(
                    f"message batch {batch_id} is still {row[3]}; cancel it and wait for it "
                    "to end before deleting it"
                )
            _drop_rows(conn, row[0])
            conn.execute(Q["delete_batch"], (row[0],))

    async def iter_results(self, workspace: str, batch_id: str) -> AsyncIterator[bytes]:
        row = await self.db.read(_fetch_batch, workspace, batch_id)
        layout.check_results_available(row, batch_id)
        low, high = layout.key_range(row[0])
        last = low - 1
        while True:
            chunk, last = await self.db.read(_results_page, last, high)
            if not chunk:
                return
            yield chunk

    # -- engine side ----------------------------------------------------------------------

    async def claim_requests(
        self, worker_id: str, limit: int, *, now: float, lease: float
    ) -> list[models.ClaimedRequest]:
        return await self.db.write(self._claim, worker_id, limit, now, lease)

    def _claim(self, worker_id: str, limit: int, now: float, lease: float) -> list[models.ClaimedRequest]:
        with self.db.transaction() as conn:
            rows = conn.execute(Q["claim"], (now, limit)).fetchall()
            if not rows:
                return []
            until = now + lease
            conn.execute(Q["lease"], (worker_id, until, _json_list(r[0] for r in rows)))
        return layout.claimed(rows)

    async def complete_requests(self, outcomes: Sequence[models.Outcome], *, now: float) -> int:
        if not outcomes:
            return 0
        return await self.db.write(self._complete, outcomes, now)

    def _complete(self, outcomes: Sequence[models.Outcome], now: float) -> int:
        with self.db.transaction() as conn:
            seqs = dict(
                conn.execute(Q["batch_seqs"], (_json_list({o.batch_id for o in outcomes}),)).fetchall()
            )
            by_key: dict[int, models.Outcome] = {}
            for o in outcomes:
                seq = seqs.get(o.batch_id)
                if seq is not None:
                    by_key.setdefault((seq << layout.KEY_BITS) | o.index, o)
            keys = _json_list(by_key)
            # Only requests without a result yet move to done: the first result is final. Those
            # that have one are rare, so they are looked up first and the update returns nothing
            # (a RETURNING row per request would cost a round trip each).
            for (key,) in conn.execute(Q["done_among"], (keys,)).fetchall():
                del by_key[key]
            if not by_key:
                return 0
            conn.execute(Q["finish_requests"], (keys,))
            values: list[object] = []
            moved: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
            for key, o in by_key.items():
                values += (key, o.result_type.value, layout.render_line(o.custom_id, o.result))
                counts = moved[key >> layout.KEY_BITS]
                counts[0] += 1
                counts[1 + layout.TYPE_COLUMN[o.result_type]] += 1
            _insert_results(conn, values)
            for seq, c in moved.items():
                conn.execute(Q["move_counts"], (c[0], c[1], c[2], c[3], c[4], seq))
                conn.execute(Q["end_if_done"], (now, seq))
        return len(by_key)

    async def heartbeat(self, worker_id: str, keys: Sequence[int], *, now: float, lease: float) -> int:
        if not keys:
            return 0
        return await self.db.write(self._simple, Q["heartbeat"], (now + lease, worker_id, _json_list(keys)))

    async def recover_leases(self, *, now: float, everything: bool = False) -> int:
        if everything:
            return await self.db.write(self._simple, Q["recover_all"], ())
        return await self.db.write(self._simple, Q["recover_lapsed"], (now,))

    def _simple(self, sql: str, args: tuple[Any, ...]) -> int:
        with self.db.transaction() as conn:
            return conn.execute(sql, args).rowcount

    async def expire_due(self, *, now: float, grace: float) -> int:
        return await self.db.write(self._expire, now, grace)

    def _expire(self, now: float, grace: float) -> int:
        expired = 0
        with self.db.transaction() as conn:
            for (seq,) in conn.execute(Q["due_to_expire"], (now,)).fetchall():
                expired += _close_state(
                    conn, seq, models.RequestState.PENDING, models.ResultType.EXPIRED, now
                )
            for (seq,) in conn.execute(Q["due_to_expire"], (now - grace,)).fetchall():
                expired += _close_state(
                    conn, seq, models.RequestState.RUNNING, models.ResultType.EXPIRED, now
                )
        return expired

    async def archive_due(self, *, now: float, retention: float) -> int:
        return await self.db.write(self._archive, now, retention)

    def _archive(self, now: float, retention: float) -> int:
        with self.db.transaction() as conn:
            seqs = [s for (s,) in conn.execute(Q["due_to_archive"], (now - retention,)).fetchall()]
            for seq in seqs:
                _drop_rows(conn, seq)
                conn.execute(Q["set_archived"], (now, seq))
        return len(seqs)

    # -- dashboard side -------------------------------------------------------------------

    async def list_results(
        self,
        workspace: str,
        batch_id: str,
        *,
        after_index: int | None = None,
        limit: int = 50,
        custom_id: str | None = None,
        result_type: models.ResultType | None = None,
    ) -> tuple[list[RequestEntry], bool]:
        return await self.db.read(
            _list_results, workspace, batch_id, after_index, limit, custom_id, result_type
        )


def _json_list(items: Iterable[str | int]) -> str:
    return orjson.dumps(list(items)).decode()


def _insert_results(conn: sqlite3.Connection, values: list[object]) -> None:
    """Inserts (key, type, line) rows, flattened in `values`, a few statements of many rows each.

    One multi-row INSERT costs one step where executemany costs one per row; the row counts are
    powers of two so the statement cache holds a handful of them.
    """
    done, total = 0, len(values) // 3
    while done < total:
        n = min(INSERT_ROWS, 1 << ((total - done).bit_length() - 1))
        conn.execute(_insert_rows_sql(n), values[done * 3 : (done + n) * 3])
        done += n


@functools.cache
def _insert_rows_sql(n: int) -> str:
    # Built at run time: the statement's row count varies with the write.
    return Q["insert_result"] + ", (?, ?, ?)" * (n - 1)


def _close_state(
    conn: sqlite3.Connection, seq: int, state: models.RequestState, result: models.ResultType, now: float
) -> int:
    """Gives every request of batch `seq` in `state` the terminal `result`; moves counts."""
    low, high = layout.key_range(seq)
    conn.execute(Q["close_pending"], (result.value, result.value, low, high, int(state)))
    n = conn.execute(Q["finish_state"], (low, high, int(state))).rowcount
    if n:
        deltas = [0, 0, 0, 0]
        deltas[layout.TYPE_COLUMN[result]] = n
        conn.execute(Q["move_counts"], (n, *deltas, seq))
    conn.execute(Q["end_if_done"], (now, seq))
    return n


def _drop_rows(conn: sqlite3.Connection, seq: int) -> None:
    low, high = layout.key_range(seq)
    conn.execute(Q["delete_results"], (low, high))
    conn.execute(Q["delete_requests"], (low, high))
    conn.execute(Q["delete_params"], (low, high))


def _fetch_batch(conn: sqlite3.Connection, workspace: str, batch_id: str) -> Sequence[Any]:
    row = conn.execute(Q["fetch_batch"], (batch_id,)).fetchone()
    if row is None or row[2] != workspace:
        raise exceptions.BatchNotFound(f"message batch {batch_id} not found")
    return row


def _list(
    conn: sqlite3.Connection, workspace: str, after_id: str | None, before_id: str | None, limit: int
) -> tuple[list[Sequence[Any]], bool]:
    if before_id is not None:
        pivot = _fetch_batch(conn, workspace, before_id)[0]
        rows = conn.execute(Q["list_before"], (workspace, pivot, limit + 1)).fetchall()
        has_more = len(rows) > limit
        return list(reversed(rows[:limit])), has_more
    if after_id is not None:
        pivot = _fetch_batch(conn, workspace, after_id)[0]
        rows = conn.execute(Q["list_after"], (workspace, pivot, limit + 1)).fetchall()
    else:
        rows = conn.execute(Q["list_first"], (workspace, limit + 1)).fetchall()
    return rows[:limit], len(rows) > limit


def _results_page(conn: sqlite3.Connection, last: int, high: int) -> tuple[bytes, int]:
    key, chunk = conn.execute(Q["results_page"], (last, high, layout.RESULTS_PAGE)).fetchone()
    if key is None:
        return b"", last
    return chunk, key


def _list_results(
    conn: sqlite3.Connection,
    workspace: str,
    batch_id: str,
    after_index: int | None,
    limit: int,
    custom_id: str | None,
    result_type: models.ResultType | None,
) -> tuple[list[RequestEntry], bool]:
    low, high = layout.key_range(_fetch_batch(conn, workspace, batch_id)[0])
    after = low - 1 if after_index is None else low + after_index
    kind = None if result_type is None else result_type.value
    rows = conn.execute(
        Q["list_results"], (after, high, custom_id, custom_id, kind, kind, limit + 1)
    ).fetchall()
    return layout.results_page(rows, limit)
