"""The domain rules every SQL store follows, written once: who sees a batch, which status may be
canceled or deleted and what each becomes, when results may be read, how batches and a batch's
requests are paged, and how written results move `request_counts`.

A store reads and writes with its own SQL (on SQLite's writer thread, or awaiting PostgreSQL); what it
decides from the rows it read is decided here, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from batchd import exceptions, models
from batchd.store import layout
from batchd.store.base import ParamsEntry, RequestEntry
from batchd.store.rows import BatchRow, EntryRow

# -- a batch's status -------------------------------------------------------------------------


def visible(row: BatchRow | None, workspace: str, batch_id: str) -> BatchRow:
    """The row of batch `batch_id`; raises BatchNotFound when there is none in `workspace`."""
    if row is None or row.workspace != workspace:
        raise exceptions.BatchNotFound(f"message batch {batch_id} not found")
    return row


def begin_cancel(row: BatchRow) -> bool:
    """Whether a cancel must turn the batch `canceling` and its pending requests `canceled` now.

    in_progress: yes. canceling: no, it already has (cancel is idempotent). ended: InvalidBatchState.
    """
    if row.status == models.ProcessingStatus.ENDED:
        raise exceptions.InvalidBatchState(f"message batch {row.id} has already ended and cannot be canceled")
    return row.status == models.ProcessingStatus.IN_PROGRESS


def check_deletable(row: BatchRow) -> None:
    """Only an ended batch may be deleted; raises InvalidBatchState otherwise."""
    if row.status != models.ProcessingStatus.ENDED:
        raise exceptions.InvalidBatchState(
            f"message batch {row.id} is still {row.status}; cancel it and wait for it "
            "to end before deleting it"
        )


def check_results_available(row: BatchRow) -> None:
    """Results exist once a batch has ended and until it is archived."""
    if row.archived_at is not None:
        raise exceptions.BatchNotFound(
            f"results of message batch {row.id} were archived and are no longer available"
        )
    if row.status != models.ProcessingStatus.ENDED:
        raise exceptions.InvalidBatchState(
            f"message batch {row.id} has not ended yet; results are available once processing_status is ended"
        )


def expiring(expires_at: float, *, now: float, grace: float) -> tuple[models.RequestState, ...]:
    """The states whose requests expire now in a batch due to expire (`expires_at <= now`): pending
    ones at once, running ones once the grace period has passed too."""
    if expires_at <= now - grace:
        return models.RequestState.PENDING, models.RequestState.RUNNING
    return (models.RequestState.PENDING,)


# -- pages ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class BatchPage:
    """One page of a workspace's batches, newest first, read by keyset on `seq` next to a cursor:
    its Message Batches only (Anthropic's wire), or every batch of both wires (`every_wire`, the
    dashboard's list)."""

    query: str  #: list_first (no cursor), list_after (older than the cursor) or list_before (newer);
    #: list_all_first, list_all_after, list_all_before with every_wire
    cursor: str | None  #: the id of the batch the page starts next to
    limit: int

    @classmethod
    def of(
        cls, *, after_id: str | None, before_id: str | None, limit: int, every_wire: bool = False
    ) -> BatchPage:
        prefix = "list_all_" if every_wire else "list_"
        if before_id is not None:
            return cls(prefix + "before", before_id, limit)
        if after_id is not None:
            return cls(prefix + "after", after_id, limit)
        return cls(prefix + "first", None, limit)

    def args(self, workspace: str, cursor_seq: int | None) -> tuple[str | int, ...]:
        """The query's parameters, `cursor_seq` the cursor batch's: one row past the page is read,
        to know whether more follow."""
        if cursor_seq is None:
            return workspace, self.limit + 1
        return workspace, cursor_seq, self.limit + 1

    def result(self, rows: Sequence[BatchRow]) -> tuple[list[models.Batch], bool]:
        """(page, has_more) from the rows the query read."""
        page = rows[: self.limit]
        if self.query.endswith("_before"):  # read upwards from the cursor: the newest come last
            page = page[::-1]
        return [r.batch() for r in page], len(rows) > self.limit


def entries_args(
    seq: int,
    *,
    after_index: int | None,
    limit: int,
    custom_id: str | None,
    result_type: models.ResultType | None,
) -> tuple[int, int, str | None, str | None, int]:
    """`list_results` parameters: the key window of batch `seq` after `after_index`, the two optional
    filters, and one row past the page (to know whether more follow)."""
    low, high = layout.key_range(seq)
    after = low - 1 if after_index is None else low + after_index
    return after, high, custom_id, None if result_type is None else result_type.value, limit + 1


def entries_page(rows: Sequence[EntryRow], limit: int) -> tuple[list[RequestEntry], bool]:
    """(page, has_more) from the rows `list_results` read with entries_args."""
    return [r.entry() for r in rows[:limit]], len(rows) > limit


def params_args(
    seq: int, *, after_index: int | None, limit: int, result_types: Sequence[models.ResultType]
) -> tuple[int, int, list[str], int]:
    """`list_params` parameters: the key window of batch `seq` after `after_index`, the result types
    wanted, and one row past the page (to know whether more follow)."""
    low, high = layout.key_range(seq)
    after = low - 1 if after_index is None else low + after_index
    return after, high, [t.value for t in result_types], limit + 1


def params_page(rows: Sequence[tuple[int, str, bytes]], limit: int) -> tuple[list[ParamsEntry], bool]:
    """(page, has_more) from the rows `list_params` read with params_args."""
    page = [
        ParamsEntry(key & layout.INDEX_MASK, custom_id, bytes(params))
        for key, custom_id, params in rows[:limit]
    ]
    return page, len(rows) > limit


# -- results and counts -----------------------------------------------------------------------


def first_outcomes(outcomes: Iterable[models.Outcome], seqs: Mapping[str, int]) -> dict[int, models.Outcome]:
    """The outcomes to record, by request key: those of batches that still exist (`seqs`, by batch
    id), and of two for one request only the first, since a request's first result is final."""
    by_key: dict[int, models.Outcome] = {}
    for o in outcomes:
        seq = seqs.get(o.batch_id)
        if seq is not None:
            by_key.setdefault(layout.key(seq, o.index), o)
    return by_key


class CountMove(NamedTuple):
    """How one write moves a batch's request_counts: `processing` requests leave, the others arrive.

    The fields are the count parameters of `move_counts`, in order.
    """

    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0


_ARRIVES = {t: CountMove._fields.index(t.value) for t in models.ResultType}  # the field a result adds to


def count_moves(written: Iterable[tuple[int, models.ResultType]]) -> list[tuple[int, CountMove]]:
    """(batch seq, its move) for the results just written, (request key, result type), in seq order
    (the order PostgreSQL locks batch rows in)."""
    tallies: defaultdict[int, list[int]] = defaultdict(lambda: [0] * len(CountMove._fields))
    for key, result_type in written:
        tally = tallies[key >> layout.KEY_BITS]
        tally[0] += 1
        tally[_ARRIVES[result_type]] += 1
    return [(seq, CountMove(*tallies[seq])) for seq in sorted(tallies)]


def closing(n: int, result_type: models.ResultType) -> CountMove:
    """The move of `n` requests closed at once with the same terminal result (cancel, expiry)."""
    tally = [n] + [0] * (len(CountMove._fields) - 1)
    tally[_ARRIVES[result_type]] = n
    return CountMove(*tally)
