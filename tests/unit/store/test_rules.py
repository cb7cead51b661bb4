"""The store rules alone (store/rules.py); the contract suite checks them through both stores."""

from __future__ import annotations

import pytest

from batchd import exceptions, models
from batchd.store import layout, rules
from batchd.store.rows import BatchRow

SUCCEEDED, ERRORED, CANCELED, EXPIRED = models.ResultType


def row(seq: int, status: str = "in_progress", archived_at: float | None = None) -> BatchRow:
    return BatchRow(seq, f"msgbatch_{seq}", "ws", status, 0.0, 1.0, None, None, archived_at, 1, 0, 0, 0, 0)


def test_count_moves_tally_each_batch_in_seq_order() -> None:
    written = [
        (layout.key(7, 0), SUCCEEDED),
        (layout.key(3, 5), ERRORED),
        (layout.key(7, 1), SUCCEEDED),
        (layout.key(7, 2), EXPIRED),
    ]
    assert rules.count_moves(written) == [
        (3, rules.CountMove(processing=1, errored=1)),
        (7, rules.CountMove(processing=3, succeeded=2, expired=1)),
    ]
    assert rules.count_moves([]) == []
    assert rules.closing(4, CANCELED) == rules.CountMove(processing=4, canceled=4)


def test_first_outcomes_keep_the_first_per_request_of_known_batches() -> None:
    first = models.Outcome("b", 1, "c1", SUCCEEDED, b"{}")
    second = models.Outcome("b", 1, "c1", ERRORED, b"{}")
    unknown = models.Outcome("gone", 0, "c0", SUCCEEDED, b"{}")
    assert rules.first_outcomes([first, second, unknown], {"b": 2}) == {layout.key(2, 1): first}


@pytest.mark.parametrize(
    ("after_id", "before_id", "query", "args"),
    [
        (None, None, "list_first", ("ws", 3)),
        ("a", None, "list_after", ("ws", 9, 3)),
        (None, "b", "list_before", ("ws", 9, 3)),
        ("a", "b", "list_before", ("ws", 9, 3)),  # before_id wins, as it always has
    ],
)
def test_batch_pages_read_one_past_the_limit(
    after_id: str | None, before_id: str | None, query: str, args: tuple[object, ...]
) -> None:
    page = rules.BatchPage.of(after_id=after_id, before_id=before_id, limit=2)
    assert page.query == query
    assert page.args("ws", None if page.cursor is None else 9) == args


def test_batch_pages_come_newest_first() -> None:
    down = rules.BatchPage.of(after_id="x", before_id=None, limit=2)
    assert [b.id for b in down.result([row(5), row(4), row(3)])[0]] == ["msgbatch_5", "msgbatch_4"]
    assert down.result([row(5), row(4), row(3)])[1] and not down.result([row(5), row(4)])[1]
    up = rules.BatchPage.of(after_id=None, before_id="x", limit=2)  # read upwards from the cursor
    assert [b.id for b in up.result([row(6), row(7), row(8)])[0]] == ["msgbatch_7", "msgbatch_6"]
    both = rules.BatchPage.of(after_id=None, before_id="x", limit=2, every_wire=True)
    assert [b.id for b in both.result([row(6), row(7), row(8)])[0]] == ["msgbatch_7", "msgbatch_6"]


@pytest.mark.parametrize(
    ("after_id", "before_id", "query"),
    [(None, None, "list_all_first"), ("a", None, "list_all_after"), (None, "b", "list_all_before")],
)
def test_every_wire_pages_use_the_unfiltered_queries(
    after_id: str | None, before_id: str | None, query: str
) -> None:
    page = rules.BatchPage.of(after_id=after_id, before_id=before_id, limit=2, every_wire=True)
    assert page.query == query


def test_transitions() -> None:
    assert rules.begin_cancel(row(1)) is True
    assert rules.begin_cancel(row(1, "canceling")) is False
    with pytest.raises(exceptions.InvalidBatchState, match="already ended"):
        rules.begin_cancel(row(1, "ended"))
    rules.check_deletable(row(1, "ended"))
    with pytest.raises(exceptions.InvalidBatchState, match="still in_progress"):
        rules.check_deletable(row(1))
    rules.check_results_available(row(1, "ended"))
    with pytest.raises(exceptions.InvalidBatchState, match="not ended"):
        rules.check_results_available(row(1, "canceling"))
    with pytest.raises(exceptions.BatchNotFound, match="archived"):
        rules.check_results_available(row(1, "ended", archived_at=5.0))
    with pytest.raises(exceptions.BatchNotFound):
        rules.visible(row(1), "other", "msgbatch_1")


def test_expiry_takes_running_requests_after_the_grace() -> None:
    pending, running = models.RequestState.PENDING, models.RequestState.RUNNING
    assert rules.expiring(100.0, now=100.0, grace=5.0) == (pending,)
    assert rules.expiring(100.0, now=105.0, grace=5.0) == (pending, running)


def test_entries_window_starts_after_the_index() -> None:
    low, high = layout.key_range(4)
    first = rules.entries_args(4, after_index=None, limit=5, custom_id=None, result_type=None)
    assert first == (low - 1, high, None, None, 6)
    later = rules.entries_args(4, after_index=2, limit=5, custom_id="c", result_type=ERRORED)
    assert later == (low + 2, high, "c", "errored", 6)
