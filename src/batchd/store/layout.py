"""Row layout and rules shared by every SQL store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batchd import exceptions, models
from batchd.store.base import RequestEntry

KEY_BITS = 32  # a request's key is batch seq << 32 | index
INDEX_MASK = (1 << KEY_BITS) - 1  # key & INDEX_MASK: the request's index in its batch
RESULTS_PAGE = 4096  # rows per results chunk (~4 MB for 1 KB results)
TYPE_COLUMN = {t: i for i, t in enumerate(models.ResultType)}  # offset among the result counters


def batch(row: Sequence[Any]) -> models.Batch:
    """A `batch_columns` row as a Batch."""
    return models.Batch(
        id=row[1],
        workspace=row[2],
        processing_status=models.ProcessingStatus(row[3]),
        created_at=row[4],
        expires_at=row[5],
        ended_at=row[6],
        cancel_initiated_at=row[7],
        archived_at=row[8],
        request_counts=models.RequestCounts(row[9], row[10], row[11], row[12], row[13]),
    )


def key_range(seq: int) -> tuple[int, int]:
    """The first and last request key of batch `seq`."""
    return seq << KEY_BITS, ((seq + 1) << KEY_BITS) - 1


def claimed(rows: Sequence[Sequence[Any]]) -> list[models.ClaimedRequest]:
    """`claim` rows (key, batch id, custom_id, params, claims, expires_at) in key order."""
    return [
        models.ClaimedRequest(
            batch_id=r[1],
            index=r[0] & INDEX_MASK,
            custom_id=r[2],
            params=r[3],
            claims=r[4],
            expires_at=r[5],
            key=r[0],
        )
        for r in sorted(rows, key=lambda r: r[0])
    ]


def results_page(rows: Sequence[Sequence[Any]], limit: int) -> tuple[list[RequestEntry], bool]:
    """`list_results` rows (key, custom_id, state, type, line), fetched one past `limit`, as a page
    and whether more follow."""
    entries = [
        RequestEntry(
            index=r[0] & INDEX_MASK,
            custom_id=r[1],
            state=models.RequestState(r[2]),
            result_type=None if r[3] is None else models.ResultType(r[3]),
            line=r[4],
        )
        for r in rows[:limit]
    ]
    return entries, len(rows) > limit


def render_line(custom_id: str, result: bytes) -> bytes:
    """The results line, stored whole so a download is concatenation."""
    return b'{"custom_id":"' + custom_id.encode() + b'","result":' + result + b"}\n"


def check_results_available(row: Sequence[Any], batch_id: str) -> None:
    """Results exist once a batch has ended and until it is archived."""
    if row[8] is not None:
        raise exceptions.BatchNotFound(
            f"results of message batch {batch_id} were archived and are no longer available"
        )
    if row[3] != models.ProcessingStatus.ENDED:
        raise exceptions.InvalidBatchState(
            f"message batch {batch_id} has not ended yet; results are available once "
            "processing_status is ended"
        )
