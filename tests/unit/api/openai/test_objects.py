"""A batch's status and stamps drawn from its row and its engine batch (api/openai/objects.py)."""

from __future__ import annotations

from typing import Any

import pytest

from batchd.api.openai import objects, outputs
from batchd.store.openai import OpenAIBatchRow

BASE: dict[str, Any] = dict(
    seq=1, id="batch_1", workspace="w", input_file_id="file-1", endpoint="/v1/embeddings",
    completion_window="24h", metadata=None, model="m", created_at=100.5, expires_at=86500.5, failed_at=None,
    errors=None, output_expires_after=3600.0, output_file_id="file-o", error_file_id="file-e", closed_at=None,
    output_bytes=None, error_bytes=None, usage=None, engine_seq=7, status="in_progress", ended_at=None,
    cancel_initiated_at=None, archived_at=None, n_processing=3, n_succeeded=0, n_errored=0, n_canceled=0,
    n_expired=0,
)  # fmt: skip


def row(**changes: Any) -> OpenAIBatchRow:
    return OpenAIBatchRow(**{**BASE, **changes})


ENDED = dict(status="ended", ended_at=200.0, n_processing=0)


@pytest.mark.parametrize(
    ("changes", "status", "stamps"),
    [
        ({}, "in_progress", {"in_progress_at": 100}),
        (ENDED, "finalizing", {"in_progress_at": 100, "finalizing_at": 200}),
        (
            {**ENDED, "closed_at": 201.0, "n_succeeded": 3},
            "completed",
            {"in_progress_at": 100, "finalizing_at": 200, "completed_at": 201},
        ),
        (
            {**ENDED, "closed_at": 201.0, "n_expired": 1},
            "expired",
            {"in_progress_at": 100, "finalizing_at": 200, "expired_at": 201},
        ),
        (
            {"status": "canceling", "cancel_initiated_at": 150.0},
            "cancelling",
            {"in_progress_at": 100, "cancelling_at": 150},
        ),
        (
            {**ENDED, "cancel_initiated_at": 150.0},
            "cancelling",
            {"in_progress_at": 100, "cancelling_at": 150},
        ),
        (
            {**ENDED, "cancel_initiated_at": 150.0, "closed_at": 201.0},
            "cancelled",
            {"in_progress_at": 100, "cancelling_at": 150, "cancelled_at": 201},
        ),
        (
            {"failed_at": 100.5, "errors": "[]", "status": None, "engine_seq": None},
            "failed",
            {"failed_at": 100},
        ),
    ],
)
def test_status_and_stamps(changes: dict[str, Any], status: str, stamps: dict[str, int]) -> None:
    drawn = objects.batch_object(row(**changes))
    assert drawn["status"] == status
    names = (
        "in_progress_at",
        "finalizing_at",
        "completed_at",
        "failed_at",
        "expired_at",
        "cancelling_at",
        "cancelled_at",
    )
    assert {name: drawn[name] for name in names if drawn[name] is not None} == stamps


def test_files_and_counts() -> None:
    closed = objects.batch_object(
        row(
            **ENDED,
            closed_at=201.0,
            n_succeeded=2,
            n_errored=1,
            output_bytes=10,
            error_bytes=0,
            usage='{"a":1}',
        )
    )
    assert closed["output_file_id"] == "file-o" and closed["error_file_id"] is None
    assert closed["request_counts"] == {"total": 3, "completed": 2, "failed": 1} and closed["usage"] == {
        "a": 1
    }
    failed = objects.batch_object(row(failed_at=100.0, errors='[{"code":"empty_file"}]', status=None))
    assert failed["errors"] == {"object": "list", "data": [{"code": "empty_file"}]}
    assert (
        failed["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
        and failed["in_progress_at"] is None
    )


def test_unrun_requests_render_as_openai_error_lines_the_same_every_time() -> None:
    stored = b'{"custom_id":"x","result":{"type":"canceled"}}\n'
    first = outputs.render("batch_1", 5, "canceled", stored)
    assert (
        first
        == outputs.render("batch_1", 5, "canceled", stored)
        != outputs.render("batch_1", 6, "canceled", stored)
    )
    assert first.endswith(b"\n") and b'"code":"batch_cancelled"' in first and b'"response":null' in first
    assert b'"code":"batch_expired"' in outputs.render(
        "b", 1, "expired", stored.replace(b"canceled", b"expired")
    )
    line = b'{"id":"batch_req_1","custom_id":"x","response":null,"error":{"code":"request_timeout"}}\n'
    assert outputs.render("b", 1, "errored", line) == line  # the engine's own line, as stored
