"""What both SQL stores decide for idempotent create and the webhook outbox (issue 17), written once.

An `Idempotency-Key` row and the batch it names are inserted in one transaction; of concurrent
duplicates the primary key (workspace, key) lets one insert, and the others read its row once that
transaction has ended. `replay` judges a row found: the batch to answer, a conflict, or a row old
enough to be taken over.

A batch ends in exactly one transaction (the guarded `end_if_done`, whichever path: results,
cancel, expiry); that transaction writes its event (`end_event`): a stable id derived from the
batch id (a batch ends once), a type saying why it ended, and the batch as it ended.
"""

from __future__ import annotations

from typing import NamedTuple

import orjson

from batchd import exceptions, models
from batchd.store.base import Idempotency, WebhookDelivery
from batchd.store.rows import BatchRow

ENDED = "message_batch.ended"
CANCELED = "message_batch.canceled"
EXPIRED = "message_batch.expired"
BATCH_PREFIX = "msgbatch_"
EVENT_PREFIX = "evt_"


class KeyRow(NamedTuple):
    """An idempotency key as `fetch_idempotency_key` reads it."""

    body_sha256: str
    batch_id: str
    created_at: float


def replay(found: KeyRow, idem: Idempotency, *, now: float) -> str | None:
    """The id of the batch to answer for a key already stored; None when the row is older than the
    window (the key is free again and the caller takes it over). Raises IdempotencyConflict when
    the key was used with another body."""
    if found.created_at <= now - idem.window:
        return None
    if found.body_sha256 != idem.body_sha256:
        raise exceptions.IdempotencyConflict(
            f"Idempotency-Key {idem.key!r} was already used with a different request body "
            f"(for message batch {found.batch_id}); use a new key for a different batch"
        )
    return found.batch_id


class EndEvent(NamedTuple):
    """The outbox row of a batch that has just ended (the columns of `insert_end_event`)."""

    id: str
    workspace: str
    type: str
    batch: str  #: the batch row as JSON (`batch_of` reads it back)
    created_at: float


def event_id(batch_id: str) -> str:
    """The event of a batch's end: one per batch, so derived from its id (stable across retries)."""
    return EVENT_PREFIX + batch_id.removeprefix(BATCH_PREFIX)


def end_event(row: BatchRow, now: float) -> EndEvent:
    """The event of batch `row`, read in the transaction that ended it."""
    if row.cancel_initiated_at is not None:
        kind = CANCELED
    elif row.n_expired:
        kind = EXPIRED
    else:
        kind = ENDED
    snapshot = orjson.dumps(row._asdict()).decode()
    return EndEvent(event_id(row.id), row.workspace, kind, snapshot, now)


def batch_of(snapshot: str) -> models.Batch:
    """The batch an event's snapshot holds."""
    return BatchRow(**orjson.loads(snapshot)).batch()


class DeliveryRow(NamedTuple):
    """A claimed delivery as the claim queries read it (`due_webhook_deliveries`,
    `claim_webhook_deliveries`)."""

    event_id: str
    endpoint_id: str
    attempt: int
    started_at: float
    type: str
    batch: str
    created_at: float
    url: str
    secret: str

    def delivery(self) -> WebhookDelivery:
        return WebhookDelivery(
            self.event_id,
            self.endpoint_id,
            self.attempt,
            self.started_at,
            self.type,
            batch_of(self.batch),
            self.created_at,
            self.url,
            self.secret,
        )
