"""Domain values shared by the store, the engine and the API. Pure: no I/O."""

from __future__ import annotations

import dataclasses
import enum
import secrets
from datetime import UTC, datetime

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class ProcessingStatus(enum.StrEnum):
    IN_PROGRESS = "in_progress"  #: requests are pending or running
    CANCELING = "canceling"  #: cancel asked; running requests are finishing
    ENDED = "ended"  #: every request has its one result


class RequestState(enum.IntEnum):
    PENDING = 0  #: waiting for a worker
    RUNNING = 1  #: leased by one worker until lease_until
    DONE = 2  #: has its one result


class ResultType(enum.StrEnum):
    SUCCEEDED = "succeeded"
    ERRORED = "errored"
    CANCELED = "canceled"
    EXPIRED = "expired"


def new_batch_id() -> str:
    return "msgbatch_" + "".join(secrets.choice(_BASE58) for _ in range(24))


def new_request_id() -> str:
    return "req_" + "".join(secrets.choice(_BASE58) for _ in range(24))


#: The OpenAI wire's batch ids (`batch_` + 32 hex); Anthropic's are `msgbatch_`.
OPENAI_BATCH_PREFIX = "batch_"


def new_openai_batch_id() -> str:
    """An OpenAI Batch API id, as OpenAI forms them: `batch_` + 32 hex."""
    return OPENAI_BATCH_PREFIX + secrets.token_hex(16)


def is_openai_batch(batch_id: str) -> bool:
    """Whether a batch was created through the OpenAI wire (its requests are input-file lines)."""
    return batch_id.startswith(OPENAI_BATCH_PREFIX)


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_openai_file_id() -> str:
    """An OpenAI Files API id: `file-` + 22 base62 characters."""
    return "file-" + "".join(secrets.choice(_BASE62) for _ in range(22))


def new_batch_request_id() -> str:
    """The `id` of one line of an OpenAI batch's output or error file."""
    return "batch_req_" + "".join(secrets.choice(_BASE62) for _ in range(24))


def rfc3339(ts: float | None) -> str | None:
    """Epoch seconds as Anthropic renders them: '2024-08-20T18:37:24.100435Z'."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclasses.dataclass(frozen=True, slots=True)
class RequestCounts:
    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0

    @property
    def total(self) -> int:
        return self.processing + self.succeeded + self.errored + self.canceled + self.expired


@dataclasses.dataclass(frozen=True, slots=True)
class Batch:
    id: str
    workspace: str
    processing_status: ProcessingStatus
    request_counts: RequestCounts
    created_at: float
    expires_at: float
    ended_at: float | None = None
    cancel_initiated_at: float | None = None
    archived_at: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ClaimedRequest:
    """One request leased to a worker."""

    batch_id: str
    index: int  #: position in the create body; with batch_id the request's key
    custom_id: str
    params: bytes  #: the params JSON exactly as received
    claims: int  #: times the request was claimed before this claim
    expires_at: float  #: the batch's expires_at
    key: int = 0  #: the store's handle for the request (heartbeats name the leases they renew)
    workspace: str = ""  #: its batch's (server tools keep containers and files per workspace)


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """The one result of one request, ready to store."""

    batch_id: str
    index: int
    custom_id: str
    result_type: ResultType
    result: bytes  #: the JSON of the `result` object of the results line
    key: int = 0  #: the ClaimedRequest's key, while the dispatcher renews its lease
    #: The whole results line, newline included, when it is not Anthropic's `{custom_id, result}`
    #: (an OpenAI batch's output or error line); stored as it is.
    line: bytes | None = None


CANCELED_RESULT = b'{"type":"canceled"}'
EXPIRED_RESULT = b'{"type":"expired"}'
