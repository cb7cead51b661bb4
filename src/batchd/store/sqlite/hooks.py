"""SQLiteStore's side of idempotent create and the webhook outbox (issue 17): the two steps that
run inside its create and end-of-batch transactions, and the Store members of the webhooks
(`HookMethods`, which SQLiteStore inherits)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import orjson

from batchd import exceptions
from batchd.store import base, hooks, queries
from batchd.store.rows import BatchRow
from batchd.store.sqlite.db import Database

Q = queries.load("sqlite")
R = TypeVar("R")


def end_if_done(conn: sqlite3.Connection, seq: int, now: float) -> None:
    """Ends batch `seq` if nothing is pending or running, writing its webhook event in the same
    transaction (every path that ends a batch comes here)."""
    if conn.execute(Q["end_if_done"], (now, seq)).rowcount:
        event = hooks.end_event(BatchRow._make(conn.execute(Q["batch_by_seq"], (seq,)).fetchone()), now)
        if conn.execute(Q["insert_end_event"], event).rowcount:
            conn.execute(Q["insert_end_deliveries"], (event.id, event.workspace, now))


def take_key(
    conn: sqlite3.Connection, workspace: str, idem: base.Idempotency, batch_id: str, now: float
) -> str | None:
    """Takes the idempotency key for `batch_id`, or returns the id of the batch it already names."""
    row = (workspace, idem.key, idem.body_sha256, batch_id, now)
    if conn.execute(Q["insert_idempotency_key"], row).rowcount:
        return None
    found = hooks.KeyRow._make(conn.execute(Q["fetch_idempotency_key"], (workspace, idem.key)).fetchone())
    replayed = hooks.replay(found, idem, now=now)
    if replayed is None:
        conn.execute(Q["replace_idempotency_key"], row)
    return replayed


class HookMethods:
    """The webhook members of the Store protocol, over SQLiteStore's `db`."""

    db: Database

    async def create_webhook_endpoint(self, endpoint: base.WebhookEndpoint) -> None:
        await self.db.execute(Q["insert_webhook_endpoint"], tuple(endpoint))

    async def list_webhook_endpoints(self, workspace: str) -> list[base.WebhookEndpoint]:
        return await self.db.read_inline(
            _rows, base.WebhookEndpoint._make, "list_webhook_endpoints", (workspace,)
        )

    async def delete_webhook_endpoint(self, workspace: str, endpoint_id: str) -> None:
        await self.db.write(self._delete_endpoint, workspace, endpoint_id)

    def _delete_endpoint(self, workspace: str, endpoint_id: str) -> None:
        with self.db.transaction(durable=True) as conn:
            if not conn.execute(Q["delete_webhook_endpoint"], (endpoint_id, workspace)).rowcount:
                raise exceptions.WebhookNotFound(f"webhook endpoint {endpoint_id} not found")
            conn.execute(Q["delete_endpoint_deliveries"], (endpoint_id,))

    async def claim_webhook_deliveries(
        self, limit: int, *, now: float, lease: float
    ) -> list[base.WebhookDelivery]:
        return await self.db.write(self._claim_deliveries, limit, now, lease)

    def _claim_deliveries(self, limit: int, now: float, lease: float) -> list[base.WebhookDelivery]:
        with self.db.transaction() as conn:
            rows = conn.execute(Q["due_webhook_deliveries"], (now, limit)).fetchall()
            conn.executemany(Q["take_webhook_delivery"], [(now + lease, r[0], r[1]) for r in rows])
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
        args = (event_id, endpoint_id, state.value, next_attempt_at, status, error, now)
        await self.db.execute(Q["record_webhook_attempt"], args)

    async def list_webhook_deliveries(
        self,
        workspace: str,
        *,
        state: base.DeliveryState | None = None,
        event_id: str | None = None,
        limit: int = 100,
    ) -> list[base.DeliveryRecord]:
        args = (workspace, None if state is None else state.value, event_id, limit)
        return await self.db.read_inline(_rows, base.DeliveryRecord._make, "list_webhook_deliveries", args)

    async def redeliver_webhook_event(self, workspace: str, event_id: str, *, now: float) -> int:
        n = await self.db.execute(Q["redeliver_webhook_event"], (event_id, workspace, now))
        if not n:
            raise exceptions.WebhookNotFound(f"webhook event {event_id} not found")
        return n

    async def sync_config_webhook_endpoints(
        self, prefix: str, endpoints: Sequence[base.WebhookEndpoint]
    ) -> None:
        await self.db.write(self._sync_endpoints, prefix, endpoints)

    def _sync_endpoints(self, prefix: str, endpoints: Sequence[base.WebhookEndpoint]) -> None:
        with self.db.transaction(durable=True) as conn:
            keep = orjson.dumps([e.id for e in endpoints]).decode()
            conn.execute(Q["drop_config_webhook_deliveries"], (prefix, keep))
            conn.execute(Q["drop_config_webhook_endpoints"], (prefix, keep))
            conn.executemany(Q["upsert_webhook_endpoint"], [tuple(e) for e in endpoints])

    async def sweep_hooks(self, *, now: float, idempotency_window: float, retention: float) -> int:
        return await self.db.write(self._sweep_hooks, now - idempotency_window, now - retention)

    def _sweep_hooks(self, keys_before: float, events_before: float) -> int:
        with self.db.transaction() as conn:
            n = conn.execute(Q["sweep_idempotency_keys"], (keys_before,)).rowcount
            n += conn.execute(Q["sweep_webhook_deliveries"], (events_before,)).rowcount
            return n + conn.execute(Q["sweep_webhook_events"], (events_before,)).rowcount


def _rows(
    conn: sqlite3.Connection, row: Callable[[Iterable[object]], R], name: str, args: Sequence[object]
) -> list[R]:
    return [row(r) for r in conn.execute(Q[name], args)]
