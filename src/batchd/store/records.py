"""The rows of the Store protocol's newer tables (`base.py` re-exports each, so callers name them
`base.X` as the others): managed API keys and usage (issue 17), code-execution containers and files
(issue 14), idempotency keys and the webhook outbox (issue 17)."""

from __future__ import annotations

import enum
from typing import NamedTuple

from batchd import models


class ApiKey(NamedTuple):
    """A managed API key as the store keeps it: never the key itself, only its SHA-256."""

    id: str  #: `key_` + random; names the key in lists, revocation and logs
    digest: str  #: SHA-256 of the key (hex)
    workspace: str
    name: str
    admin: bool  #: may use the admin API (every workspace's keys and usage)
    created_at: float
    last_used_at: float | None  #: written at most once a minute
    expires_at: float | None
    revoked_at: float | None


class Usage(NamedTuple):
    """What one workspace holds, as its quota counts it."""

    workspace: str
    batches: int  #: batches in progress (not ended)
    queued_requests: int  #: requests pending or running
    stored_bytes: int  #: bytes of params of batches neither deleted nor archived


class Container(NamedTuple):
    """A code-execution container as the store keeps it (its fields are the columns). Its home (the
    files its programs wrote) lives on the machine that ran it; see tools/code_execution."""

    id: str
    workspace: str
    created_at: float
    expires_at: float  #: moved forward each time a request uses it


class StoredFile(NamedTuple):
    """A file of the Files API, without its bytes (its fields are the columns)."""

    id: str
    workspace: str
    container_id: str | None  #: the container whose program wrote it
    filename: str
    mime_type: str
    size_bytes: int
    created_at: float
    expires_at: float  #: +inf for an upload: kept until deleted
    downloadable: bool  #: a program's output (True) or an upload (False), as Anthropic's


# -- idempotency and webhooks (added for issue 17) ------------------------------------------------


class Idempotency(NamedTuple):
    """An `Idempotency-Key` sent with a create."""

    key: str
    body_sha256: str  #: hex SHA-256 of the create body: the same key with another body is a conflict
    window: float  #: seconds a key answers its batch; older keys are free again


class DeliveryState(enum.StrEnum):
    PENDING = "pending"  #: waiting for its next attempt
    DELIVERED = "delivered"  #: the endpoint answered 2xx
    DEAD = "dead"  #: retried until `webhook_give_up_after`: only a redelivery sends it again


class WebhookEndpoint(NamedTuple):
    """A workspace's webhook endpoint (the fields are the columns of `list_webhook_endpoints`)."""

    id: str
    workspace: str
    url: str
    secret: str  #: whsec_<base64>: the HMAC key of the signatures, shown once when created
    created_at: float


class WebhookDelivery(NamedTuple):
    """One claimed attempt to deliver one event to one endpoint."""

    event_id: str
    endpoint_id: str
    attempt: int  #: this attempt's number, the first is 1
    started_at: float  #: when the retries started (the batch's end, or the last redelivery)
    type: str  #: message_batch.ended | message_batch.canceled | message_batch.expired
    batch: models.Batch  #: the batch as it ended
    created_at: float  #: the event's time: the batch's end
    url: str
    secret: str


class DeliveryRecord(NamedTuple):
    """A delivery as the CLI and the API list it (the fields are the columns of
    `list_webhook_deliveries`)."""

    event_id: str
    endpoint_id: str
    url: str | None  #: None once the endpoint was deleted
    type: str
    state: str  #: a DeliveryState value
    attempts: int
    next_attempt_at: float
    last_status: int | None  #: the HTTP status of the last attempt, None if it got no answer
    last_error: str | None
    created_at: float  #: the event's time
    updated_at: float
