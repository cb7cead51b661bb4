"""SQLiteStore: the embedded default store."""

from __future__ import annotations

import functools
import itertools
import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import TypeVar

import orjson

from batchd import exceptions, models
from batchd.config import settings
from batchd.config.quotas import Quota
from batchd.store import base, layout, queries, quotas, rules, shares
from batchd.store.rows import BatchRow, ClaimRow, EntryRow, claimed
from batchd.store.sqlite import db, files, hooks, keys, openai, space
from batchd.store.sqlite.blobs import Blobs
from batchd.store.sqlite.db import Database

Q = queries.load("sqlite")
INSERT_ROWS = 256  # most result rows per INSERT statement (3 parameters each)
CREATE_CACHE_KIB = 8192  # writer page cache during a create: bounds its memory above the body's
MIN_FREE_BYTES = 1 << 20  # a file system with less free is full to `probe_write`: a create needs more
R = TypeVar("R")


class SQLiteStore(hooks.HookMethods, files.FileMethods, keys.KeyMethods, openai.OpenAIMethods):
    #: Seconds the engine lets results gather before it writes them in one commit. Each commit is
    #: a transaction and two hand-offs with the writer thread: at a small engine's pace (hundreds
    #: of results a second), committing every 10 ms cost ~15% of batchd's CPU per request (340 vs
    #: 290 µs against a loopback upstream answering in 25 ms), CPU that a shared host takes from the
    #: engine. 50 ms is still far below any client's polling interval.
    commit_interval = 0.05
    #: None: one process owns a SQLite file, so its own route limits are the whole fleet's.
    fleet_slots: base.FleetSlots | None = None
    #: None: one process owns a SQLite file and takes back every lease when it starts.
    worker_lock: base.WorkerLock | None = None

    def __init__(self, path: str, *, weights: Mapping[str, float] | None = None) -> None:
        """weights: per workspace, its share of the engine (config/weights.py; 1 when not named)."""
        self.db = Database(path)
        self.blobs = Blobs(path)  # uploaded OpenAI files' bytes, beside the database
        self.shares = shares.Shares(weights)

    async def listen(self, callback: Callable[[], None]) -> None:
        """Nothing to hear: no other process writes this file (the API wakes its own engine)."""

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
        quota: Quota | None = None,
        idempotency: base.Idempotency | None = None,
        batch_id: str | None = None,
    ) -> models.Batch:
        batch_id = batch_id or models.new_batch_id()
        return await self.db.write(
            self._create, batch_id, workspace, custom_ids, params, now, expires_at, quota, idempotency
        )

    def _create(
        self,
        batch_id: str,
        workspace: str,
        custom_ids: Sequence[str],
        params: Sequence[bytes | memoryview],
        now: float,
        expires_at: float,
        quota: Quota | None,
        idempotency: base.Idempotency | None,
        then: Callable[[sqlite3.Connection], None] | None = None,
    ) -> models.Batch:
        """then: more to write in the same transaction (an OpenAI batch's own row)."""
        size = sum(len(p) for p in params)
        with self.db.cache_limit(CREATE_CACHE_KIB), self.db.transaction(durable=True) as conn:
            if idempotency is not None:
                replayed = hooks.take_key(conn, workspace, idempotency, batch_id, now)
                if replayed is not None:
                    return _fetch_batch(conn, workspace, replayed).batch()
            if quota is not None and not quota.unlimited:
                # One writer: nothing commits between this read and the insert.
                query = "workspace_usage" if quota.stored_bytes else "open_usage"
                usage = base.Usage._make(conn.execute(Q[query], (workspace,)).fetchone())
                quotas.check(quota, usage, requests=len(custom_ids), stored_bytes=size)
            cur = conn.execute(Q["insert_batch"], (batch_id, workspace, now, expires_at, len(custom_ids)))
            seq = cur.lastrowid or 0
            conn.execute(Q["insert_batch_size"], (seq, workspace, size))
            keys = range(layout.key(seq, 0), layout.key(seq, len(custom_ids)))
            conn.executemany(Q["insert_request"], zip(keys, custom_ids, strict=True))
            conn.executemany(Q["insert_params"], zip(keys, params, strict=True))
            if then is not None:
                then(conn)
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
        return row.batch()

    async def list_batches(
        self,
        workspace: str,
        *,
        after_id: str | None = None,
        before_id: str | None = None,
        limit: int = 20,
        every_wire: bool = False,
    ) -> tuple[list[models.Batch], bool]:
        page = rules.BatchPage.of(after_id=after_id, before_id=before_id, limit=limit, every_wire=every_wire)
        return await self.db.read_inline(_list, workspace, page)

    async def cancel_batch(self, workspace: str, batch_id: str, now: float) -> models.Batch:
        return await self.db.write(self._cancel, workspace, batch_id, now)

    def _cancel(self, workspace: str, batch_id: str, now: float) -> models.Batch:
        with self.db.transaction(durable=True) as conn:
            row = _fetch_batch(conn, workspace, batch_id)
            if rules.begin_cancel(row):
                conn.execute(Q["set_canceling"], (now, row.seq))
                _close_state(conn, row.seq, models.RequestState.PENDING, models.ResultType.CANCELED, now)
            return _fetch_batch(conn, workspace, batch_id).batch()

    async def delete_batch(self, workspace: str, batch_id: str) -> None:
        """Its rows go a window at a time (sqlite/space.py), the batch in the last turn; the space
        they took goes back to the file system over the next archival sweeps."""
        row = await self.db.read_inline(_fetch_batch, workspace, batch_id)
        rules.check_deletable(row)
        await space.drop_in_turns(self.db, row.seq)
        await self.db.write(self._delete, workspace, batch_id)

    def _delete(self, workspace: str, batch_id: str) -> None:
        with self.db.transaction(durable=True) as conn:
            row = _fetch_batch(conn, workspace, batch_id)
            rules.check_deletable(row)
            _drop_rows(conn, row.seq)
            conn.execute(Q["delete_batch"], (row.seq,))

    async def iter_results(self, workspace: str, batch_id: str) -> AsyncIterator[bytes]:
        row = await self.db.read(_fetch_batch, workspace, batch_id)
        rules.check_results_available(row)
        low, high = layout.key_range(row.seq)
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
        """Shares the claim out over the open batches (store/shares.py), each taken in key order.

        Rounds after the first spread what batches without enough pending work left over the
        others; each round ends at least one batch's pending work or fills the claim.
        """
        rows: list[ClaimRow] = []
        with self.db.transaction() as conn:
            batches = sorted(_rows(conn, shares.OpenBatch._make, "open_batches", (now,)))
            asked = self.shares.plan(batches, limit)
            first = True
            while asked:
                got: dict[int, int] = {}
                taken: list[ClaimRow] = []
                for seq, n in asked.items():
                    low, high = layout.key_range(seq)
                    batch_rows = _rows(conn, ClaimRow._make, "claim", (seq, low, high, n))
                    got[seq] = len(batch_rows)
                    taken += batch_rows
                if taken:  # leased before the next round reads pending requests again
                    conn.execute(Q["lease"], (worker_id, now + lease, _json_list(r.key for r in taken)))
                    rows += taken
                if first:
                    self.shares.took(asked, got)
                    first = False
                batches = shares.survivors(batches, asked, got)
                asked = self.shares.spread(batches, limit - len(rows))
        return claimed(rows)

    async def complete_requests(self, outcomes: Sequence[models.Outcome], *, now: float) -> int:
        if not outcomes:
            return 0
        return await self.db.write(self._complete, outcomes, now)

    def _complete(self, outcomes: Sequence[models.Outcome], now: float) -> int:
        with self.db.transaction() as conn:
            seqs = dict(
                conn.execute(Q["batch_seqs"], (_json_list({o.batch_id for o in outcomes}),)).fetchall()
            )
            by_key = rules.first_outcomes(outcomes, seqs)
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
            for key, o in by_key.items():
                values += (key, o.result_type.value, o.line or layout.render_line(o.custom_id, o.result))
            _insert_results(conn, values)
            for seq, move in rules.count_moves((key, o.result_type) for key, o in by_key.items()):
                conn.execute(Q["move_counts"], (*move, seq))
                hooks.end_if_done(conn, seq, now)
        return len(by_key)

    async def heartbeat(self, worker_id: str, keys: Sequence[int], *, now: float, lease: float) -> int:
        if not keys:
            return 0
        return await self.db.execute(Q["heartbeat"], (now + lease, worker_id, _json_list(keys)))

    async def recover_leases(
        self,
        *,
        now: float,
        everything: bool = False,
        takeover_after: float = settings.DEFAULT_TAKEOVER_AFTER,
    ) -> int:
        """takeover_after: no other worker's lock to check (one process owns the file)."""
        if everything:
            return await self.db.execute(Q["recover_all"], ())
        return await self.db.execute(Q["recover_lapsed"], (now,))

    async def expire_due(self, *, now: float, grace: float) -> int:
        return await self.db.write(self._expire, now, grace)

    def _expire(self, now: float, grace: float) -> int:
        expired = 0
        with self.db.transaction() as conn:
            for seq, expires_at in conn.execute(Q["due_to_expire"], (now,)).fetchall():
                for state in rules.expiring(expires_at, now=now, grace=grace):
                    expired += _close_state(conn, seq, state, models.ResultType.EXPIRED, now)
        return expired

    async def archive_due(self, *, now: float, retention: float) -> int:
        """Each due batch's rows go a window at a time (sqlite/space.py), then it is marked
        archived; then free pages (of this archival, or of deletes) go back to the file system."""
        seqs = await self.db.read_inline(_due_to_archive, now - retention)
        for seq in seqs:
            await space.drop_in_turns(self.db, seq)
            await self.db.write(self._archive, seq, now)
        await space.give_back(self.db)
        return len(seqs)

    def _archive(self, seq: int, now: float) -> None:
        with self.db.transaction() as conn:
            _drop_rows(conn, seq)
            conn.execute(Q["set_archived"], (now, seq))

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
    ) -> tuple[list[base.RequestEntry], bool]:
        def read(conn: sqlite3.Connection) -> tuple[list[base.RequestEntry], bool]:
            seq = _fetch_batch(conn, workspace, batch_id).seq
            args = rules.entries_args(
                seq, after_index=after_index, limit=limit, custom_id=custom_id, result_type=result_type
            )
            return rules.entries_page(_rows(conn, EntryRow._make, "list_results", args), limit)

        return await self.db.read(read)

    # -- health ---------------------------------------------------------------------------

    async def probe_write(self, *, now: float) -> base.WriteProblem | None:
        """Full below MIN_FREE_BYTES free on the database's file system; else a one-row write
        must commit.

        The free space is looked at because the write alone cannot tell: it rewrites pages the
        files already have. On a full disk (a tmpfs, measured) it commits while every create fails.
        """
        if db.free_bytes(self.db.path) < MIN_FREE_BYTES:
            return base.WriteProblem.DISK_FULL
        try:
            await self.db.write(self._probe_write, now)
        except exceptions.StoreError as exc:
            return db.write_problem(exc)
        return None

    def _probe_write(self, now: float) -> None:
        with self.db.transaction() as conn:
            conn.execute(Q["write_probe"], (now,))

    # -- dashboard sessions ---------------------------------------------------------------

    async def create_session(self, session: base.Session, *, idle: float) -> None:
        await self.db.write(self._create_session, session, idle)

    def _create_session(self, session: base.Session, idle: float) -> None:
        with self.db.transaction(durable=True) as conn:
            conn.execute(Q["drop_ended_sessions"], (session.created_at, idle))
            conn.execute(Q["insert_session"], session)

    async def get_session(self, digest: str) -> base.Session | None:
        return await self.db.read_inline(_fetch_session, digest)

    async def touch_session(self, digest: str, now: float) -> None:
        await self.db.execute(Q["touch_session"], (digest, now))

    async def revoke_session(self, digest: str, now: float) -> bool:
        return await self.db.write(self._revoke_session, digest, now)

    def _revoke_session(self, digest: str, now: float) -> bool:
        # Durable: a logout acknowledged must hold after a power cut.
        with self.db.transaction(durable=True) as conn:
            return conn.execute(Q["revoke_session"], (digest, now)).rowcount > 0

    # -- secrets ----------------------------------------------------------------------------

    async def server_secret(self, name: str) -> bytes:
        return await self.db.write(self._server_secret, name)

    def _server_secret(self, name: str) -> bytes:
        with self.db.transaction(durable=True) as conn:
            conn.execute(Q["insert_server_secret"], (name, secrets.token_bytes(base.SECRET_BYTES)))
            return bytes(conn.execute(Q["server_secret"], (name,)).fetchone()[0])

    # -- dashboard (issue 18) ---------------------------------------------------------------

    async def list_params(
        self,
        workspace: str,
        batch_id: str,
        *,
        result_types: Sequence[models.ResultType],
        after_index: int | None = None,
        limit: int = 1000,
    ) -> tuple[list[base.ParamsEntry], bool]:
        def read(conn: sqlite3.Connection) -> tuple[list[base.ParamsEntry], bool]:
            seq = _fetch_batch(conn, workspace, batch_id).seq
            after, high, types, n = rules.params_args(
                seq, after_index=after_index, limit=limit, result_types=result_types
            )
            rows = conn.execute(Q["list_params"], (after, high, _json_list(types), n)).fetchall()
            return rules.params_page(rows, limit)

        return await self.db.read(read)


def _fetch_one(
    conn: sqlite3.Connection, row: Callable[[Iterable[object]], R], name: str, args: Sequence[object]
) -> R | None:
    """The first row of named query `name` made a typed row by `row`, or None."""
    found = conn.execute(Q[name], args).fetchone()
    return None if found is None else row(found)


def _fetch_session(conn: sqlite3.Connection, digest: str) -> base.Session | None:
    row = conn.execute(Q["fetch_session"], (digest,)).fetchone()
    return None if row is None else base.Session._make(row)


def _rows(
    conn: sqlite3.Connection, row: Callable[[Iterable[object]], R], name: str, args: Sequence[object]
) -> list[R]:
    """Every row of named query `name`, each made a typed row by `row` (a NamedTuple's _make)."""
    return [row(r) for r in conn.execute(Q[name], args)]


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
        conn.execute(Q["move_counts"], (*rules.closing(n, result), seq))
    hooks.end_if_done(conn, seq, now)
    return n


def _due_to_archive(conn: sqlite3.Connection, before: float) -> list[int]:
    return [seq for (seq,) in conn.execute(Q["due_to_archive"], (before,)).fetchall()]


def _drop_rows(conn: sqlite3.Connection, seq: int) -> None:
    low, high = layout.key_range(seq)
    conn.execute(Q["delete_results"], (low, high))
    conn.execute(Q["delete_requests"], (low, high))
    conn.execute(Q["delete_params"], (low, high))


def _fetch_batch(conn: sqlite3.Connection, workspace: str, batch_id: str) -> BatchRow:
    row = conn.execute(Q["fetch_batch"], (batch_id,)).fetchone()
    return rules.visible(None if row is None else BatchRow._make(row), workspace, batch_id)


def _list(conn: sqlite3.Connection, workspace: str, page: rules.BatchPage) -> tuple[list[models.Batch], bool]:
    cursor_seq = None if page.cursor is None else _fetch_batch(conn, workspace, page.cursor).seq
    return page.result(_rows(conn, BatchRow._make, page.query, page.args(workspace, cursor_seq)))


def _results_page(conn: sqlite3.Connection, last: int, high: int) -> tuple[bytes, int]:
    """The page of results after key `last` (up to `high`), in key order: (lines, its last key)."""
    n, offsets, chunk = conn.execute(Q["results_page"], (last, high, layout.RESULTS_PAGE)).fetchone()
    if not n:
        return b"", last
    end = rising_end(offsets, n)
    if end is None:  # group_concat took the rows out of order: never seen, never trusted
        return _results_rows(conn, last, high)
    return chunk, last + end


def _results_rows(conn: sqlite3.Connection, last: int, high: int) -> tuple[bytes, int]:
    rows = conn.execute(Q["results_rows"], (last, high, layout.RESULTS_PAGE)).fetchall()
    return b"".join([line for _, line in rows]), rows[-1][0]


# The offsets of a full page of consecutive keys as results_page lists them, "1,2,…": every page
# of an ended batch but its last is that, and its last is a prefix of it.
_CONSECUTIVE = ",".join(map(str, range(1, layout.RESULTS_PAGE + 1)))
_CONSECUTIVE_ENDS = [
    0,
    *itertools.accumulate(len(str(i)) + (i > 1) for i in range(1, layout.RESULTS_PAGE + 1)),
]


def rising_end(offsets: str, n: int) -> int | None:
    """The last of `n` key offsets (comma-separated, in the order the page's lines came) if they
    rise, so the lines came in key order; else None."""
    if (
        n < len(_CONSECUTIVE_ENDS)
        and len(offsets) == _CONSECUTIVE_ENDS[n]
        and _CONSECUTIVE.startswith(offsets)
    ):
        return n  # the usual page, compared without parsing
    values = [int(v) for v in offsets.split(",")]
    return values[-1] if all(a < b for a, b in itertools.pairwise(values)) else None
