"""PostgresStore: the scale-out store, shared by any number of `batchd serve` and `batchd worker`.

Same semantics as SQLiteStore (the contract suite is the judge), made safe for many processes:
- claims take pending rows with `FOR UPDATE SKIP LOCKED`, so claimers never wait for each other;
- every transaction that changes a batch locks its row first, in seq order (no deadlocks), and
  `end_if_done` is guarded by status, so expiry, cancel and completion never transition twice;
- sweeps (expiry, lease recovery, archival) run in whichever process takes a transaction-scoped
  advisory lock first; the others skip that round;
- with `max_running` set, claims hold a fleet-wide advisory lock and never let the number of
  running requests, across every process, exceed it;
- a route's `fleet_concurrency` is held by slots: session advisory locks on one dedicated
  connection per process (`fleet_slots`, see slots.py);
- each worker holds a liveness lock, a session advisory lock on a connection of its own
  (`worker_lock`, see liveness.py); the lease sweep takes over the running requests of a worker
  whose lock has been free for `takeover_after`, a killed one's within seconds;
- creating a batch and recovering leases NOTIFY `batchd_work`, which wakes every dispatcher.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

from batchd import exceptions, models
from batchd.config import settings
from batchd.config.quotas import Quota
from batchd.store import base, layout, queries, quotas, rules, shares
from batchd.store.postgres import db, files, hooks, liveness, locks, openai
from batchd.store.postgres.db import Database, rowcount
from batchd.store.postgres.driver import Connection
from batchd.store.postgres.slots import Slots
from batchd.store.rows import BatchRow, ClaimRow, EntryRow, claimed

logger = logging.getLogger("batchd.store")
Q = queries.load("postgres")
FLOOR_RESET = 5.0  # seconds between full claim scans (see PostgresStore._claim)


class PostgresStore(hooks.HookMethods, files.FileMethods, openai.OpenAIMethods):
    #: Seconds the engine lets results gather before it writes them in one commit. Shorter than
    #: SQLite's: commits run on the event loop, with no thread to hand off to. Shorter still under
    #: a `max_running` cap, where a request counts as running until its result is written, so
    #: results held back hold the whole fleet's claims back (bench/postgres.py, 2 workers at a
    #: 64-call cap: 402 req/s at 50 ms, 530 at 10 ms, 567 at 2 ms; the ideal is 640).
    commit_interval = 0.01

    def __init__(self, dsn: str, *, max_running: int = 0, weights: Mapping[str, float] | None = None) -> None:
        """max_running: most requests running at once across every process sharing the database
        (0: no cap). Not a route's `fleet_concurrency`, which `fleet_slots` holds. weights: per
        workspace, its share of the engine (config/weights.py), the same in every process."""
        self.db = Database(dsn)
        self.fleet_slots = Slots(dsn)  # per-route fleet limits; connects on first use
        self.worker_lock = liveness.WorkerLock(dsn, self.db)  # connects when the engine takes it
        # Identities whose liveness lock this process's sweeps found free: since when (monotonic).
        self._free_since: dict[str, float] = {}
        self.max_running = max_running
        if max_running:
            self.commit_interval = 0.002
        # Per open batch, the lowest key of the last claim from it: the next walk of it starts there.
        self._floors: dict[int, int] = {}
        self._full_scan_at = 0.0  # monotonic time the floors were last dropped
        self.shares = shares.Shares(weights)

    async def open(self) -> None:
        await self.db.open()

    async def aclose(self) -> None:
        await self.worker_lock.aclose()
        await self.fleet_slots.aclose()
        await self.db.aclose()

    async def __aenter__(self) -> PostgresStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def listen(self, callback: Callable[[], None]) -> None:
        """Calls `callback` whenever any process announces new work (LISTEN/NOTIFY)."""

        def wake() -> None:
            self._reset_floor()  # the work announced may lie below the floor (recovered leases)
            callback()

        await self.db.listen(wake)

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
        async with self.db.transaction() as conn:
            return await self._create_batch(
                conn, batch_id, workspace, custom_ids, params, now, expires_at, quota, idempotency
            )

    async def _create_batch(
        self,
        conn: Connection,
        batch_id: str,
        workspace: str,
        custom_ids: Sequence[str],
        params: Sequence[bytes | memoryview],
        now: float,
        expires_at: float,
        quota: Quota | None,
        idempotency: base.Idempotency | None,
    ) -> models.Batch:
        """create_batch's writes, in the caller's transaction `conn` (an OpenAI batch adds its row)."""
        size = sum(len(p) for p in params)
        if idempotency is not None:
            replayed = await hooks.take_key(conn, workspace, idempotency, batch_id, now)
            if replayed is not None:
                return (await _fetch_batch(conn, workspace, replayed)).batch()
        if quota is not None and not quota.unlimited:
            # Creates of one workspace take turns until commit: each sees the batches before it.
            await conn.execute(Q["quota_lock"], locks.quota_key(workspace))
            query = "workspace_usage" if quota.stored_bytes else "open_usage"
            usage = base.Usage._make((await conn.fetch(Q[query], workspace))[0])
            quotas.check(quota, usage, requests=len(custom_ids), stored_bytes=size)
        seq = await conn.fetchval(Q["insert_batch"], batch_id, workspace, now, expires_at, len(custom_ids))
        await conn.execute(Q["insert_batch_size"], seq, workspace, size)
        keys = range(layout.key(seq, 0), layout.key(seq, len(custom_ids)))
        await conn.copy_records_to_table(
            "requests", records=zip(keys, custom_ids, strict=True), columns=["key", "custom_id"]
        )
        await conn.copy_records_to_table(
            "request_params", records=zip(keys, params, strict=True), columns=["key", "params"]
        )
        await conn.execute(Q["notify_work"])
        return models.Batch(
            id=batch_id,
            workspace=workspace,
            processing_status=models.ProcessingStatus.IN_PROGRESS,
            request_counts=models.RequestCounts(processing=len(custom_ids)),
            created_at=now,
            expires_at=expires_at,
        )

    async def get_batch(self, workspace: str, batch_id: str) -> models.Batch:
        async def read(conn: Connection) -> models.Batch:
            return (await _fetch_batch(conn, workspace, batch_id)).batch()

        return await self.db.read(read)

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

        async def read(conn: Connection) -> tuple[list[models.Batch], bool]:
            cursor = None if page.cursor is None else (await _fetch_batch(conn, workspace, page.cursor)).seq
            rows = await conn.fetch(Q[page.query], *page.args(workspace, cursor))
            return page.result([BatchRow._make(r) for r in rows])

        return await self.db.read(read)

    async def cancel_batch(self, workspace: str, batch_id: str, now: float) -> models.Batch:
        async with self.db.transaction() as conn:
            row = await _fetch_batch(conn, workspace, batch_id, lock=True)
            if rules.begin_cancel(row):
                await conn.execute(Q["set_canceling"], row.seq, now)
                pending, canceled = models.RequestState.PENDING, models.ResultType.CANCELED
                await _close_state(conn, row.seq, pending, canceled, now)
            return (await _fetch_batch(conn, workspace, batch_id)).batch()

    async def delete_batch(self, workspace: str, batch_id: str) -> None:
        async with self.db.transaction() as conn:
            row = await _fetch_batch(conn, workspace, batch_id, lock=True)
            rules.check_deletable(row)
            await _drop_rows(conn, row.seq)
            await conn.execute(Q["delete_batch"], row.seq)

    async def iter_results(self, workspace: str, batch_id: str) -> AsyncIterator[bytes]:
        async with self.db.connection() as conn:
            row = await _fetch_batch(conn, workspace, batch_id)
        rules.check_results_available(row)
        low, high = layout.key_range(row.seq)
        last = low - 1
        while True:
            # Keyset pages, one short query each: constant memory, no long-lived cursor.
            async with self.db.connection() as conn:
                rows = await conn.fetch(Q["results_page"], last, high, layout.RESULTS_PAGE)
            if not rows:
                return
            last, _ = rows[-1]
            yield b"".join([line for _, line in rows])

    # -- engine side ----------------------------------------------------------------------

    async def claim_requests(
        self, worker_id: str, limit: int, *, now: float, lease: float
    ) -> list[models.ClaimedRequest]:
        async with self.db.transaction() as conn:
            if self.max_running:
                await conn.execute(Q["claim_lock"], locks.CLAIM)
                running = await conn.fetchval(Q["count_running"])
                limit = min(limit, self.max_running - running)
                if limit <= 0:
                    return []
            await conn.execute(Q["claim_plan"])
            rows = await self._claim(conn, now, limit, worker_id, now + lease)
        return claimed(rows)

    async def _claim(
        self, conn: Connection, now: float, limit: int, worker_id: str, until: float
    ) -> list[ClaimRow]:
        """Shares the claim out over the open batches (store/shares.py), each walked from its floor.

        Within a batch claims go in key order, so its keys below this store's last claim from it
        are done or being claimed by another process; starting there skips the dead index entries
        of done requests, which would otherwise make every claim walk all of them until the next
        vacuum. Requests returned to pending below a floor (recovered leases) are found by the
        full scans: when a batch comes up short from its floor (the next round walks it from its
        first key), when any process announces work, and at least every FLOOR_RESET seconds.
        Rounds after the first spread what batches without enough pending work left over the
        others; each round ends at least one batch's pending work or fills the claim.
        """
        if time.monotonic() - self._full_scan_at >= FLOOR_RESET:
            self._floors.clear()
            self._full_scan_at = time.monotonic()
        batches = sorted(shares.OpenBatch._make(r) for r in await conn.fetch(Q["open_batches"], now))
        # Batches no longer open are forgotten.
        floors = self._floors = {b.seq: f for b in batches if (f := self._floors.get(b.seq))}
        rows: list[ClaimRow] = []
        lowest: dict[int, int] = {}  # per batch, the lowest key this claim took
        asked = self.shares.plan(batches, limit)
        first = True
        while asked:
            seqs = list(asked)
            lows = [floors.get(seq) or layout.key_range(seq)[0] for seq in seqs]
            highs = [layout.key_range(seq)[1] for seq in seqs]
            args = (now, worker_id, until, lows, highs, [asked[seq] for seq in seqs])
            taken = [ClaimRow._make(r) for r in await conn.fetch(Q["claim"], *args)]
            got: dict[int, int] = {}
            for r in taken:
                seq = r.key >> layout.KEY_BITS
                got[seq] = got.get(seq, 0) + 1
                lowest[seq] = min(lowest.get(seq, r.key), r.key)
            rows += taken
            if first:
                self.shares.took(asked, got)
                first = False
            short = {seq for seq in seqs if got.get(seq, 0) < asked[seq]}
            # A batch short from its floor may have pending requests below it: walk it whole next round.
            again = {seq for seq in short if floors.pop(seq, None) is not None}
            batches = [b for b in batches if b.seq in again or b.seq not in short]
            asked = self.shares.spread(batches, limit - len(rows))
        floors.update(lowest)
        return rows

    def _reset_floor(self) -> None:
        self._floors.clear()

    async def complete_requests(self, outcomes: Sequence[models.Outcome], *, now: float) -> int:
        if not outcomes:
            return 0
        async with self.db.transaction() as conn:
            locked = await conn.fetch(Q["lock_batches_by_id"], list({o.batch_id for o in outcomes}))
            by_key = rules.first_outcomes(outcomes, {batch_id: seq for batch_id, seq in locked})
            # Only requests without a result yet move to done: the first result is final.
            finished = await conn.fetch(Q["finish_requests"], list(by_key))
            if not finished:
                return 0
            keys, types, rendered = [], [], []
            for (key,) in finished:
                o = by_key[key]
                keys.append(key)
                types.append(o.result_type.value)
                rendered.append(o.line or layout.render_line(o.custom_id, o.result))
            await conn.execute(Q["insert_results"], keys, types, rendered)
            for seq, move in rules.count_moves((key, by_key[key].result_type) for key in keys):
                await conn.execute(Q["move_counts"], seq, *move)
                await hooks.end_if_done(conn, seq, now)
            if self.max_running:
                await conn.execute(Q["notify_work"])  # running requests ended: let waiting claimers in
        return len(finished)

    async def heartbeat(self, worker_id: str, keys: Sequence[int], *, now: float, lease: float) -> int:
        if not keys:
            return 0
        mine = liveness.worker_of(worker_id) + "/"  # rows of its earlier identities move to this one
        async with self.db.transaction() as conn:
            return rowcount(await conn.execute(Q["heartbeat"], now + lease, worker_id, list(keys), mine))

    async def recover_leases(
        self,
        *,
        now: float,
        everything: bool = False,
        takeover_after: float = settings.DEFAULT_TAKEOVER_AFTER,
    ) -> int:
        """`everything` is only right when this process owns the database alone (never in a fleet)."""
        async with self.db.transaction() as conn:
            if everything:
                n = rowcount(await conn.execute(Q["recover_all"]))
            elif not await conn.fetchval(Q["maintenance_lock"], locks.RECOVER):
                return 0
            else:
                dead, suspects = await self._dead_workers(conn, takeover_after)
                n = rowcount(await conn.execute(Q["recover_workers"], dead)) if dead else 0
                if n:
                    logger.info("took over %d requests of dead workers %s", n, ", ".join(dead))
                n += rowcount(await conn.execute(Q["recover_lapsed"], now, suspects))
            if n:
                await conn.execute(Q["notify_work"])
        if n:
            self._reset_floor()
        return n

    async def _dead_workers(self, conn: Connection, takeover_after: float) -> tuple[list[str], list[str]]:
        """(dead, suspects): the identities holding running requests whose liveness lock this
        process has found free for `takeover_after` seconds, and those found free more lately.

        A lock found free stays free (an identity is never taken again), so the first sighting by
        this process starts the count whatever happened in between. Counted on this process's
        monotonic clock: never a clock another machine sets.
        """
        running = [w for (w,) in await conn.fetch(Q["running_workers"])]
        keyed = {w: k for w in running if (k := locks.worker_key(w)) is not None}
        free = await conn.fetch(Q["free_worker_locks"], list(keyed), list(keyed.values())) if keyed else []
        seen = time.monotonic()
        self._free_since = {w: self._free_since.get(w, seen) for (w,) in free}
        dead = [w for w, since in self._free_since.items() if seen - since >= takeover_after]
        return dead, [w for w in self._free_since if w not in dead]

    async def expire_due(self, *, now: float, grace: float) -> int:
        expired = 0
        async with self.db.transaction() as conn:
            if not await conn.fetchval(Q["maintenance_lock"], locks.EXPIRE):
                return 0
            for seq, expires_at in await conn.fetch(Q["due_to_expire"], now):
                for state in rules.expiring(expires_at, now=now, grace=grace):
                    expired += await _close_state(conn, seq, state, models.ResultType.EXPIRED, now)
        return expired

    async def archive_due(self, *, now: float, retention: float) -> int:
        async with self.db.transaction() as conn:
            if not await conn.fetchval(Q["maintenance_lock"], locks.ARCHIVE):
                return 0
            seqs = [seq for (seq,) in await conn.fetch(Q["due_to_archive"], now - retention)]
            for seq in seqs:
                await _drop_rows(conn, seq)
                await conn.execute(Q["set_archived"], seq, now)
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
    ) -> tuple[list[base.RequestEntry], bool]:
        async def read(conn: Connection) -> tuple[list[base.RequestEntry], bool]:
            seq = (await _fetch_batch(conn, workspace, batch_id)).seq
            args = rules.entries_args(
                seq, after_index=after_index, limit=limit, custom_id=custom_id, result_type=result_type
            )
            rows = await conn.fetch(Q["list_results"], *args)
            return rules.entries_page([EntryRow._make(r) for r in rows], limit)

        return await self.db.read(read)

    # -- health ---------------------------------------------------------------------------

    async def probe_write(self, *, now: float) -> base.WriteProblem | None:
        """One row written into a table just truncated, then rolled back: the truncation gives
        the table a new file, so the row must find new room on disk (a row written into a page
        the table already has could pass on a full disk)."""
        try:
            async with self.db.transaction() as conn:
                await conn.execute(Q["truncate_write_probe"])
                await conn.execute(Q["insert_write_probe"], now)
                raise _RollBack
        except _RollBack:
            return None
        except exceptions.StoreError as exc:
            return db.write_problem(exc)

    # -- dashboard sessions: shared by every process, so a login made on one works on all ---

    async def create_session(self, session: base.Session, *, idle: float) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(Q["drop_ended_sessions"], session.created_at, idle)
            await conn.execute(Q["insert_session"], *session)

    async def get_session(self, digest: str) -> base.Session | None:
        async def read(conn: Connection) -> base.Session | None:
            row = await conn.fetchrow(Q["fetch_session"], digest)
            return None if row is None else base.Session._make(row)

        return await self.db.read(read)

    async def touch_session(self, digest: str, now: float) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(Q["touch_session"], digest, now)

    async def revoke_session(self, digest: str, now: float) -> bool:
        async with self.db.transaction() as conn:
            return rowcount(await conn.execute(Q["revoke_session"], digest, now)) > 0

    # -- secrets ----------------------------------------------------------------------------

    async def server_secret(self, name: str) -> bytes:
        async with self.db.transaction() as conn:
            await conn.execute(Q["insert_server_secret"], name, secrets.token_bytes(base.SECRET_BYTES))
            value: bytes = await conn.fetchval(Q["server_secret"], name)
        return bytes(value)

    # -- API keys and quotas (added for issue 17) --

    async def create_api_key(self, key: base.ApiKey) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(Q["insert_api_key"], *key)

    async def find_api_key(self, digest: str) -> base.ApiKey | None:
        async def read(conn: Connection) -> base.ApiKey | None:
            row = await conn.fetchrow(Q["find_api_key"], digest)
            return None if row is None else base.ApiKey._make(row)

        return await self.db.read(read)

    async def list_api_keys(self, workspace: str | None = None) -> list[base.ApiKey]:
        async def read(conn: Connection) -> list[base.ApiKey]:
            return [base.ApiKey._make(row) for row in await conn.fetch(Q["list_api_keys"], workspace)]

        return await self.db.read(read)

    async def revoke_api_key(self, key_id: str, now: float) -> base.ApiKey | None:
        async with self.db.transaction() as conn:
            await conn.execute(Q["revoke_api_key"], key_id, now)
            row = await conn.fetchrow(Q["fetch_api_key"], key_id)
        return None if row is None else base.ApiKey._make(row)

    async def touch_api_key(self, key_id: str, now: float, *, every: float) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(Q["touch_api_key"], key_id, now, every)

    async def usage(self, workspace: str | None = None) -> list[base.Usage]:
        async def read(conn: Connection) -> list[base.Usage]:
            if workspace is None:
                return [base.Usage._make(row) for row in await conn.fetch(Q["all_usage"])]
            return [base.Usage._make(row) for row in await conn.fetch(Q["workspace_usage"], workspace)]

        return await self.db.read(read)

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
        async def read(conn: Connection) -> tuple[list[base.ParamsEntry], bool]:
            seq = (await _fetch_batch(conn, workspace, batch_id)).seq
            args = rules.params_args(seq, after_index=after_index, limit=limit, result_types=result_types)
            rows = await conn.fetch(Q["list_params"], *args)
            return rules.params_page([(r[0], r[1], r[2]) for r in rows], limit)

        return await self.db.read(read)


class _RollBack(Exception):
    """Ends a transaction that must leave nothing behind."""


async def _close_state(
    conn: Connection, seq: int, state: models.RequestState, result: models.ResultType, now: float
) -> int:
    """Gives every request of batch `seq` in `state` the terminal `result`; moves counts.

    The caller holds the batch row lock.
    """
    low, high = layout.key_range(seq)
    n: int = await conn.fetchval(Q["close_state"], low, high, int(state), result.value)
    if n:
        await conn.execute(Q["move_counts"], seq, *rules.closing(n, result))
    await hooks.end_if_done(conn, seq, now)
    return n


async def _drop_rows(conn: Connection, seq: int) -> None:
    low, high = layout.key_range(seq)
    await conn.execute(Q["delete_results"], low, high)
    await conn.execute(Q["delete_requests"], low, high)
    await conn.execute(Q["delete_params"], low, high)


async def _fetch_batch(conn: Connection, workspace: str, batch_id: str, *, lock: bool = False) -> BatchRow:
    row = await conn.fetchrow(Q["lock_batch" if lock else "fetch_batch"], batch_id)
    return rules.visible(None if row is None else BatchRow._make(row), workspace, batch_id)
