"""Row layout and rules shared by every SQL store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batchd import exceptions, models

KEY_BITS = 32  # a request's key is batch seq << 32 | index
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
