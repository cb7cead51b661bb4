"""The rows the SQL stores read, as NamedTuples that name their columns, and the values they become.

A store turns a driver's row into one of these where it reads it (`BatchRow._make(row)`), and from
there every column is read by name. The fields are the columns, in order, of the named queries each
row type lists; tests/integration/test_migrations.py checks them against both dialects.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from batchd import models
from batchd.store import layout
from batchd.store.base import RequestEntry


class BatchRow(NamedTuple):
    """A batch: `fetch_batch`, `lock_batch`, `list_first`, `list_after`, `list_before`."""

    seq: int  #: the batch's number in the store; its requests' keys are layout.key_range(seq)
    id: str
    workspace: str
    status: str  #: a models.ProcessingStatus value
    created_at: float
    expires_at: float
    ended_at: float | None
    cancel_initiated_at: float | None
    archived_at: float | None
    n_processing: int
    n_succeeded: int
    n_errored: int
    n_canceled: int
    n_expired: int

    def batch(self) -> models.Batch:
        return models.Batch(
            id=self.id,
            workspace=self.workspace,
            processing_status=models.ProcessingStatus(self.status),
            created_at=self.created_at,
            expires_at=self.expires_at,
            ended_at=self.ended_at,
            cancel_initiated_at=self.cancel_initiated_at,
            archived_at=self.archived_at,
            request_counts=models.RequestCounts(
                processing=self.n_processing,
                succeeded=self.n_succeeded,
                errored=self.n_errored,
                canceled=self.n_canceled,
                expired=self.n_expired,
            ),
        )


class ClaimRow(NamedTuple):
    """A request just leased to a worker: `claim`."""

    key: int
    batch_id: str
    custom_id: str
    params: bytes
    claims: int  #: times the request was claimed before this claim
    expires_at: float  #: its batch's
    workspace: str  #: its batch's


class EntryRow(NamedTuple):
    """A request of a batch with its result, if it has one: `list_results`."""

    key: int
    custom_id: str
    state: int  #: a models.RequestState value
    type: str | None  #: a models.ResultType value, once the request has its result
    line: bytes | None

    def entry(self) -> RequestEntry:
        return RequestEntry(
            index=self.key & layout.INDEX_MASK,
            custom_id=self.custom_id,
            state=models.RequestState(self.state),
            result_type=None if self.type is None else models.ResultType(self.type),
            line=self.line,
        )


def claimed(rows: Iterable[ClaimRow]) -> list[models.ClaimedRequest]:
    """The requests of one claim, in key order (a driver may return them in any order)."""
    return [
        models.ClaimedRequest(
            batch_id=r.batch_id,
            index=r.key & layout.INDEX_MASK,
            custom_id=r.custom_id,
            params=r.params,
            claims=r.claims,
            expires_at=r.expires_at,
            key=r.key,
            workspace=r.workspace,
        )
        for r in sorted(rows)
    ]
