"""PostgresStore's side of idempotent create and the webhook outbox (issue 17): the two steps that
run inside its create and end-of-batch transactions, and the Store members of the webhooks
(`HookMethods`, which PostgresStore inherits). Deliveries are claimed with SKIP LOCKED, so each is
sent by one process of the fleet."""

from __future__ import annotations

from collections.abc import Sequence

from batchd import exceptions
from batchd.store import base, hooks, queries
from batchd.store.postgres import locks
from batchd.store.postgres.db import Database, rowcount
from batchd.store.postgres.driver import Connection
from batchd.store.rows import BatchRow

Q = queries.load("postgres")


async def end_if_done(conn: Connection, seq: int, now: float) -> None:
    """Ends batch `seq` if nothing is pending or running, writing its webhook event in the same
    transaction (every path that ends a batch comes here; the caller holds the batch row lock)."""
    if rowcount(await conn.execute(Q["end_if_done"], seq, now)):
        ended = await conn.fetchrow(Q["batch_by_seq"], seq)
        assert ended is not None  # just updated, under the batch row's lock
        event = hooks.end_event(BatchRow._make(ended), now)
        if rowcount(await conn.execute(Q["insert_end_event"], *event)):
            await conn.execute(Q["insert_end_deliveries"], event.id, event.workspace, now)


async def take_key(
    conn: Connection, workspace: str, idem: base.Idempotency, batch_id: str, now: float
) -> str | None:
    """Takes the idempotency key for `batch_id`, or returns the id of the batch it already names.

    A concurrent duplicate's insert waits on the primary key until the winner's transaction ends,
    then inserts nothing; its row is committed by then and read here.
    """
    row = (workspace, idem.key, idem.body_sha256, batch_id, now)
    if rowcount(await conn.execute(Q["insert_idempotency_key"], *row)):
        return None
    found_row = await conn.fetchrow(Q["fetch_idempotency_key"], workspace, idem.key)
    if found_row is None:  # an expired key swept between the two statements: free now
        return await take_key(conn, workspace, idem, batch_id, now)
    found = hooks.KeyRow._make(found_row)
    replayed = hooks.replay(found, idem, now=now)
    if replayed is None:
        await conn.execute(Q["replace_idempotency_key"], *row)
    return replayed


class HookMethods:
    """The webhook members of the Store protocol, over PostgresStore's `db`."""

    db: Database

    async def create_webhook_endpoint(self, endpoint: base.WebhookEndpoint) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(Q["insert_webhook_endpoint"], *endpoint)

    async def list_webhook_endpoints(self, workspace: str) -> list[base.WebhookEndpoint]:
        async def read(conn: Connection) -> list[base.WebhookEndpoint]:
            rows = await conn.fetch(Q["list_webhook_endpoints"], workspace)
            return [base.WebhookEndpoint._make(r) for r in rows]

        return await self.db.read(read)

    async def delete_webhook_endpoint(self, workspace: str, endpoint_id: str) -> None:
        async with self.db.transaction() as conn:
            if not rowcount(await conn.execute(Q["delete_webhook_endpoint"], endpoint_id, workspace)):
                raise exceptions.WebhookNotFound(f"webhook endpoint {endpoint_id} not found")
            await conn.execute(Q["delete_endpoint_deliveries"], endpoint_id)

    async def claim_webhook_deliveries(
        self, limit: int, *, now: float, lease: float
    ) -> list[base.WebhookDelivery]:
        async with self.db.transaction() as conn:
            rows = await conn.fetch(Q["claim_webhook_deliveries"], now, limit, now + lease)
        return [hooks.DeliveryRow._make(r).delivery() for r in rows]

    async def record_webhook_attempt(
        self,
        event_id: str,
        endpoint_id: str,
        *,
        state: base.DeliveryState,
        next_attempt_at: float,
        status: int | None,
        error: str | None,
        now: float,
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                Q["record_webhook_attempt"],
                event_id,
                endpoint_id,
                state.value,
                next_attempt_at,
                status,
                error,
                now,
            )

    async def list_webhook_deliveries(
        self,
        workspace: str,
        *,
        state: base.DeliveryState | None = None,
        event_id: str | None = None,
        limit: int = 100,
    ) -> list[base.DeliveryRecord]:
        async def read(conn: Connection) -> list[base.DeliveryRecord]:
            value = None if state is None else state.value
            rows = await conn.fetch(Q["list_webhook_deliveries"], workspace, value, event_id, limit)
            return [base.DeliveryRecord._make(r) for r in rows]

        return await self.db.read(read)

    async def redeliver_webhook_event(self, workspace: str, event_id: str, *, now: float) -> int:
        async with self.db.transaction() as conn:
            n = rowcount(await conn.execute(Q["redeliver_webhook_event"], event_id, workspace, now))
        if not n:
            raise exceptions.WebhookNotFound(f"webhook event {event_id} not found")
        return n

    async def sync_config_webhook_endpoints(
        self, prefix: str, endpoints: Sequence[base.WebhookEndpoint]
    ) -> None:
        keep = [e.id for e in endpoints]
        async with self.db.transaction() as conn:
            await conn.execute(Q["drop_config_webhook_deliveries"], prefix, keep)
            await conn.execute(Q["drop_config_webhook_endpoints"], prefix, keep)
            for endpoint in endpoints:
                await conn.execute(Q["upsert_webhook_endpoint"], *endpoint)

    async def sweep_hooks(self, *, now: float, idempotency_window: float, retention: float) -> int:
        async with self.db.transaction() as conn:
            if not await conn.fetchval(Q["maintenance_lock"], locks.HOOKS):
                return 0
            n = rowcount(await conn.execute(Q["sweep_idempotency_keys"], now - idempotency_window))
            n += rowcount(await conn.execute(Q["sweep_webhook_deliveries"], now - retention))
            return n + rowcount(await conn.execute(Q["sweep_webhook_events"], now - retention))
