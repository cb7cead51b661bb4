"""The Store protocol: intent-named domain operations every store implements.

Invariants the implementations enforce (see ARCHITECTURE.md):
- a request gets at most one result: the first `complete_requests` wins, later ones are ignored;
- the transaction that writes results also moves `request_counts` and ends the batch when
  nothing is pending or running, so counts always add up and `ended` means done;
- `create_batch` returns only after every request is durably committed.

What only a store shared by several processes (PostgreSQL) can do is declared too, so callers never
probe for it: `listen` hears of work other processes announce (a store owned by one process has no
one to hear from, and does nothing), `fleet_slots` holds routes' fleet-wide slots (None where one
process owns the store, whose own limits are the whole fleet's), and `worker_lock` proves a worker
alive to the others, so a dead one's requests are taken over in seconds (None where one process
owns the store and takes back everything at its start).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import NamedTuple, Protocol

from batchd import models
from batchd.config import quotas, settings
from batchd.store.openai import OpenAIMethods
from batchd.store.records import (  # re-exported: callers name them base.X
    ApiKey as ApiKey,
)
from batchd.store.records import (
    Container as Container,
)
from batchd.store.records import (
    DeliveryRecord as DeliveryRecord,
)
from batchd.store.records import (
    DeliveryState as DeliveryState,
)
from batchd.store.records import (
    Idempotency as Idempotency,
)
from batchd.store.records import (
    StoredFile as StoredFile,
)
from batchd.store.records import (
    Usage as Usage,
)
from batchd.store.records import (
    WebhookDelivery as WebhookDelivery,
)
from batchd.store.records import (
    WebhookEndpoint as WebhookEndpoint,
)

SECRET_BYTES = 32  #: the length of a `Store.server_secret`


class Store(OpenAIMethods, Protocol):
    """Every store's operations; the OpenAI wire's are `OpenAIMethods` (store/openai.py)."""

    #: Seconds the engine lets results gather before writing them in one commit.
    commit_interval: float

    @property
    def fleet_slots(self) -> FleetSlots | None:
        """The fleet-wide slots of routes with a `fleet_concurrency`; None on a store that one
        process owns (SQLite), where the process's own route limits already hold for the fleet."""
        ...

    @property
    def worker_lock(self) -> WorkerLock | None:
        """The lock that proves a worker alive to the other processes sharing the store; None on a
        store that one process owns (SQLite), which takes back every lease when it starts."""
        ...

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def listen(self, callback: Callable[[], None]) -> None:
        """From now on, calls `callback()` whenever another process announces new work (and once
        when listening starts, for work announced before). Returns at once; a store that one process
        owns has no one to hear from and never calls it."""
        ...

    async def create_batch(
        self,
        *,
        workspace: str,
        custom_ids: Sequence[str],
        params: Sequence[bytes | memoryview],
        now: float,
        expires_at: float,
        quota: quotas.Quota | None = None,
        idempotency: Idempotency | None = None,
        batch_id: str | None = None,
    ) -> models.Batch:
        """batch_id: the new batch's id (an OpenAI-wire batch's `batch_…`); a new `msgbatch_…` by default.
        With `quota`, the workspace's usage is checked against it in the same transaction as the
        insert (creates of one workspace take turns there), raising QuotaExceeded with nothing
        stored when the batch does not fit."""
        ...

    async def get_batch(self, workspace: str, batch_id: str) -> models.Batch:
        """Raises BatchNotFound."""
        ...

    async def list_batches(
        self,
        workspace: str,
        *,
        after_id: str | None = None,
        before_id: str | None = None,
        limit: int = 20,
        every_wire: bool = False,
    ) -> tuple[list[models.Batch], bool]:
        """Newest first; returns (page, has_more). Raises BatchNotFound for a bad cursor. Message
        Batches only, unless `every_wire`: then OpenAI batches (`batch_…`, engine batches of
        store/openai.py) too, interleaved by creation (the dashboard's list)."""
        ...

    async def cancel_batch(self, workspace: str, batch_id: str, now: float) -> models.Batch: ...

    async def delete_batch(self, workspace: str, batch_id: str) -> None:
        """Raises InvalidBatchState unless ended."""
        ...

    def iter_results(self, workspace: str, batch_id: str) -> AsyncIterator[bytes]:
        """JSONL chunks, one line per request. Raises InvalidBatchState/BatchNotFound on the first step."""
        ...

    async def claim_requests(
        self, worker_id: str, limit: int, *, now: float, lease: float
    ) -> list[models.ClaimedRequest]: ...

    async def complete_requests(self, outcomes: Sequence[models.Outcome], *, now: float) -> int:
        """Records the outcomes of requests that have none yet; returns how many were recorded."""
        ...

    async def heartbeat(self, worker_id: str, keys: Sequence[int], *, now: float, lease: float) -> int:
        """Renews the leases of `keys` (ClaimedRequest.key) that `worker_id` still holds.

        Only the requests a worker really has in hand: a claim whose answer was lost (the
        connection dropped after COMMIT) must lapse and return to pending, not live forever.
        """
        ...

    async def recover_leases(
        self,
        *,
        now: float,
        everything: bool = False,
        takeover_after: float = settings.DEFAULT_TAKEOVER_AFTER,
    ) -> int:
        """Returns lapsed (or, with everything, all) running requests to pending.

        On a store with a `worker_lock` (a fleet), also the running requests of every worker whose
        lock has been free for `takeover_after` seconds (the worker died, or lost its database
        session and has stopped working on them), and not those of a worker whose lock was found
        free more lately, even when their leases lapsed: it may be alive and taking a new lock.
        Only requests taken from dead workers count as crashes (`ClaimedRequest.claims`).
        """
        ...

    async def expire_due(self, *, now: float, grace: float) -> int: ...

    async def archive_due(self, *, now: float, retention: float) -> int: ...

    # -- dashboard side (added for issue 5) -----------------------------------------------

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
        """One page of a batch's requests in create order, each with its result line if it has one.

        after_index: only requests whose `index` (position in the create body) is greater.
        custom_id: only the request with exactly this custom_id.
        result_type: only requests that have a result of this type.
        Returns (page, has_more). Raises BatchNotFound (unknown id or another workspace's
        batch). An archived batch has no rows left and returns ([], False).
        """
        ...

    # -- health (added for issue 12) ------------------------------------------------------

    async def probe_write(self, *, now: float) -> WriteProblem | None:
        """Whether the store can take a write now: None, or what stops it.

        The probe is a real write transaction that needs new room where the data lives, so a full
        disk shows even while a write into pages already allocated would still pass. Cheap (a few
        ms) but not free: `/health` runs it at most every two seconds.
        """
        ...

    # -- dashboard sessions (added for issue 12) ------------------------------------------

    async def create_session(self, session: Session, *, idle: float) -> None:
        """Stores a new login session. In the same transaction, drops every session that has
        ended by `session.created_at`: revoked, past its `expires_at`, or unused for `idle` seconds."""
        ...

    async def get_session(self, digest: str) -> Session | None:
        """The session whose id has this digest, ended or not (the caller judges); None if none."""
        ...

    async def touch_session(self, digest: str, now: float) -> None:
        """Records that the session was used at `now` (its idle time starts again)."""
        ...

    async def revoke_session(self, digest: str, now: float) -> bool:
        """Ends the session at `now` for every process; False if it was unknown or ended already."""
        ...

    # -- secrets (added for issue 13) -----------------------------------------------------

    async def server_secret(self, name: str) -> bytes:
        """The secret `name`: 32 random bytes, created by the first call of any process on this
        store and the same for every later call of every process (a racing creation keeps one
        value). Meant for keys a whole fleet must share, e.g. the server tools' token key.
        """
        ...

    # -- code-execution containers and their files (added for issue 14) ---------------------

    async def create_container(self, container: Container) -> None:
        """Stores a new container (its id is new: random, never reused)."""
        ...

    async def get_container(self, container_id: str) -> Container | None:
        """The container with this id, expired or not, whatever its workspace (the caller judges)."""
        ...

    async def touch_container(self, container_id: str, expires_at: float) -> None:
        """Moves the container's end to `expires_at` (never earlier than it was)."""
        ...

    async def expire_containers(self, *, now: float) -> list[str]:
        """Drops every container past its `expires_at`; their ids."""
        ...

    async def live_containers(self, container_ids: Sequence[str], *, now: float) -> set[str]:
        """Those of `container_ids` that exist and have not expired at `now`."""
        ...

    async def put_file(self, file: StoredFile, content: bytes) -> None:
        """Stores a file and its bytes."""
        ...

    async def get_file(self, workspace: str, file_id: str, *, now: float) -> StoredFile | None:
        """The file's metadata, if it is the workspace's and has not expired."""
        ...

    async def file_content(self, workspace: str, file_id: str, *, now: float) -> bytes | None:
        """The file's bytes, if it is the workspace's and has not expired."""
        ...

    async def list_files(
        self, workspace: str, *, now: float, limit: int, after: StoredFile | None, backwards: bool = False
    ) -> list[StoredFile]:
        """The workspace's files, newest first, the first `limit` after `after` (older than it);
        with `backwards`, the `limit` newer than `after`, oldest first."""
        ...

    async def delete_file(self, workspace: str, file_id: str) -> bool:
        """Deletes the file; False when the workspace has no such file."""
        ...

    async def expire_files(self, *, now: float) -> int:
        """Drops every file past its `expires_at`; how many."""
        ...

    # -- API keys and quotas (added for issue 17) --

    async def create_api_key(self, key: ApiKey) -> None:
        """Stores a new managed key (its digest only). Raises StoreError if the id or digest exists."""
        ...

    async def find_api_key(self, digest: str) -> ApiKey | None:
        """The key whose secret has this digest, revoked or expired or not (the caller judges)."""
        ...

    async def list_api_keys(self, workspace: str | None = None) -> list[ApiKey]:
        """Every managed key (of `workspace` only, if given), oldest first, revoked ones included."""
        ...

    async def revoke_api_key(self, key_id: str, now: float) -> ApiKey | None:
        """Revokes the key at `now` for every process; returns it (revoked then or before), or None."""
        ...

    async def touch_api_key(self, key_id: str, now: float, *, every: float) -> None:
        """Records the key's use at `now`, unless a use less than `every` seconds old is recorded."""
        ...

    async def usage(self, workspace: str | None = None) -> list[Usage]:
        """What `workspace` (or every workspace that has a batch) holds now, by workspace name."""
        ...

    # -- idempotency and webhooks (added for issue 17) ------------------------------------
    #
    # `create_batch` also takes `idempotency: Idempotency | None = None` (keyword): with it, the key
    # row and the batch are inserted in one transaction, and a key seen within its window answers
    # the batch it created (same body) or raises IdempotencyConflict (another body). Every
    # transaction that ends a batch also writes its webhook event and one delivery per endpoint of
    # its workspace (the outbox), so an ended batch is never without its event.

    async def create_webhook_endpoint(self, endpoint: WebhookEndpoint) -> None: ...

    async def list_webhook_endpoints(self, workspace: str) -> list[WebhookEndpoint]:
        """The workspace's endpoints, oldest first, secrets included (the API leaves them out)."""
        ...

    async def delete_webhook_endpoint(self, workspace: str, endpoint_id: str) -> None:
        """Deletes the endpoint and its deliveries; raises WebhookNotFound (also for another
        workspace's endpoint)."""
        ...

    async def claim_webhook_deliveries(
        self, limit: int, *, now: float, lease: float
    ) -> list[WebhookDelivery]:
        """Up to `limit` deliveries due by `now`, each hidden from every claimer (in a fleet, every
        process) for `lease` seconds and its attempt counted: one that is not recorded by then (its
        process died) is claimed again, so an event is delivered at least once."""
        ...

    async def record_webhook_attempt(
        self,
        event_id: str,
        endpoint_id: str,
        *,
        state: DeliveryState,
        next_attempt_at: float,
        status: int | None,
        error: str | None,
        now: float,
    ) -> None:
        """The outcome of a claimed attempt: delivered, dead, or pending again at `next_attempt_at`."""
        ...

    async def list_webhook_deliveries(
        self,
        workspace: str,
        *,
        state: DeliveryState | None = None,
        event_id: str | None = None,
        limit: int = 100,
    ) -> list[DeliveryRecord]:
        """The workspace's deliveries, newest event first."""
        ...

    async def redeliver_webhook_event(self, workspace: str, event_id: str, *, now: float) -> int:
        """Makes every delivery of the event pending and due now, its 24 h of retries starting again;
        returns how many. Raises WebhookNotFound for an unknown event or another workspace's."""
        ...

    async def sync_config_webhook_endpoints(self, prefix: str, endpoints: Sequence[WebhookEndpoint]) -> None:
        """Makes the endpoints whose ids start with `prefix` (those of the configuration) exactly
        `endpoints`: adds or updates each, deletes the others with their deliveries."""
        ...

    async def sweep_hooks(self, *, now: float, idempotency_window: float, retention: float) -> int:
        """Forgets idempotency keys older than the window and webhook events older than
        `retention` that nothing waits to deliver; returns how many rows went."""
        ...

    # -- dashboard (added for issue 18) ---------------------------------------------------

    async def list_params(
        self,
        workspace: str,
        batch_id: str,
        *,
        result_types: Sequence[models.ResultType],
        after_index: int | None = None,
        limit: int = 1000,
    ) -> tuple[list[ParamsEntry], bool]:
        """One page, in create order, of the requests of a batch whose result has one of
        `result_types`, each with the `params` it was created with (the bytes stored at create).

        For the dashboard's "retry these" file. after_index: only requests whose `index` is greater.
        Returns (page, has_more). Raises BatchNotFound (unknown id or another workspace's batch).
        An archived batch has no rows left and returns ([], False).
        """
        ...


class WriteProblem(enum.StrEnum):
    """Why the store cannot be written, in words `/health` shows to anyone: never a path, an
    address or a driver's message."""

    DISK_FULL = "disk full"
    READ_ONLY = "read-only"
    IO_ERROR = "I/O error"
    WRITE_FAILED = "write failed"  # anything else


@dataclasses.dataclass(frozen=True, slots=True)
class RequestEntry:
    """One request of a batch as the dashboard lists it."""

    index: int  #: position in the create body
    custom_id: str
    state: models.RequestState
    result_type: models.ResultType | None  #: None until the request has its result
    line: bytes | None  #: the request's results JSONL line (newline included), once it has one


@dataclasses.dataclass(frozen=True, slots=True)
class ParamsEntry:
    """A request of a batch with the params it was created with: `Store.list_params`."""

    index: int  #: position in the create body
    custom_id: str
    params: bytes  #: the request's `params` JSON as stored at create


class Session(NamedTuple):
    """A dashboard login session, as `fetch_session` reads it (its fields are the columns).

    Only the digest of the session id is stored: whoever reads the store cannot log in with it.
    """

    digest: str  #: SHA-256 of the session id (hex); the id itself lives only in the browser's cookie
    workspace: str
    key_proof: str  #: HMAC of the API key that logged in, keyed by the session id: which key, unreadable here
    created_at: float
    expires_at: float  #: the session ends then, used or not
    last_seen_at: float
    revoked_at: float | None  #: set at logout


@dataclasses.dataclass(frozen=True, slots=True)
class Slot:
    """One fleet-wide slot of a route, held until given back with `FleetSlots.release`."""

    route: str  #: the route's name (its model pattern)
    number: int  #: which of the route's `limit` slots
    session: int  #: the holder's session: a slot is freed when the session that took it ends


class FleetSlots(Protocol):
    """Slots that bound a route's calls in flight across every process sharing the store.

    A process that dies frees its slots at once (nothing to wait for, no lease to lapse).
    """

    async def acquire(self, name: str, limit: int, *, deadline: float) -> Slot:
        """One of the `limit` slots of route `name`, waiting until `deadline` (time.monotonic())
        at most; raises TimeoutError then."""
        ...

    async def release(self, slot: Slot) -> None:
        """Gives `slot` back; never raises (a slot whose session has ended is free already)."""
        ...


class WorkerLock(Protocol):
    """A fleet worker's proof of life: a lock its own database session holds while it lives.

    Each `take` starts a new identity (`worker_id/epoch`), under which the worker claims and renews.
    The lock of an identity is never taken again once lost, so "free" is final: every process's
    `recover_leases` returns the running requests of an identity whose lock it has found free for
    `takeover_after`. A killed process frees its lock at once (PostgreSQL ends its session), so its
    requests are taken over within seconds, not when their leases lapse. The worker must stop
    working on the requests of an identity well before that: it gives them up when it has not
    confirmed the lock for half of `takeover_after` (engine/liveness.py).
    """

    async def take(self, worker_id: str) -> str | None:
        """A new identity of `worker_id` whose lock this process now holds (the previous one's, if
        any, is let go); None when the database cannot be reached."""
        ...

    async def confirm(self) -> bool:
        """Whether the lock of the current identity is still held: one round trip on its session,
        bounded in time. False once the session is lost (and the lock with it)."""
        ...

    async def release(self, identity: str, requests: Mapping[int, int]) -> int:
        """Returns requests that `identity` (or an earlier identity of its worker) gave up, alive, to
        pending without counting their claim; returns how many. `requests` maps each key to the claim
        count the store held for that claim: a request claimed again since (by anyone) stays put."""
        ...
