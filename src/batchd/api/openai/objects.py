"""The OpenAI wire's objects as the SDK reads them (the spec's §2.2, §3.2): `FileObject` and `Batch`,
every field present (explicit nulls), and a batch's status drawn from its engine batch.

    validating ──► failed                       (validation failed at create: no engine batch)
               └─► in_progress ─► finalizing ─► completed | expired
    in_progress ──cancel──► cancelling ─► cancelled

Validation runs inside the create (docs/openai.md), so a batch leaves the create `in_progress` or
`failed`, with `in_progress_at` (or `failed_at`) equal to `created_at`. `finalizing` is an engine
batch that has ended but whose output and error files are not summed yet (outputs.close), which the
first read after the end does; its end is `finalizing_at`, the summing `completed_at` (or
`expired_at`, `cancelled_at`). Every stamp is a stored one, set once, so none ever moves.
"""

from __future__ import annotations

from typing import Any

import orjson

from batchd import models
from batchd.store.openai import OpenAIBatchRow, OpenAIFile

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


def file_object(file: OpenAIFile) -> dict[str, Any]:
    return {
        "id": file.id,
        "object": "file",
        "bytes": file.bytes,
        "created_at": int(file.created_at),
        "expires_at": None if file.expires_at is None else int(file.expires_at),
        "filename": file.filename,
        "purpose": file.purpose,
        "status": "processed",
        "status_details": None,
    }


def status(row: OpenAIBatchRow) -> str:
    if row.failed_at is not None or row.status is None:
        return "failed"
    canceled = row.cancel_initiated_at is not None
    if row.closed_at is None:
        if row.status == models.ProcessingStatus.IN_PROGRESS:
            return "in_progress"
        if canceled:
            return "cancelling"
        return "finalizing"
    if canceled:
        return "cancelled"
    return "expired" if row.n_expired else "completed"


def ended(row: OpenAIBatchRow) -> bool:
    """Whether the engine batch has ended and its files still wait to be summed (outputs.close)."""
    return row.closed_at is None and row.status == models.ProcessingStatus.ENDED


def batch_object(row: OpenAIBatchRow) -> dict[str, Any]:
    state = status(row)
    closed = row.closed_at if state in TERMINAL else None
    return {
        "id": row.id,
        "object": "batch",
        "endpoint": row.endpoint,
        "input_file_id": row.input_file_id,
        "completion_window": row.completion_window,
        "status": state,
        "created_at": int(row.created_at),
        "expires_at": int(row.expires_at),
        "in_progress_at": None if state == "failed" else int(row.created_at),
        "finalizing_at": _stamp(row.ended_at if row.cancel_initiated_at is None else None),
        "completed_at": _stamp(closed if state == "completed" else None),
        "failed_at": _stamp(row.failed_at),
        "expired_at": _stamp(closed if state == "expired" else None),
        "cancelling_at": _stamp(row.cancel_initiated_at),
        "cancelled_at": _stamp(closed if state == "cancelled" else None),
        "output_file_id": row.output_file_id if closed is not None and row.output_bytes else None,
        "error_file_id": row.error_file_id if closed is not None and row.error_bytes else None,
        "errors": None if row.errors is None else {"object": "list", "data": orjson.loads(row.errors)},
        "request_counts": counts(row),
        "usage": None if row.usage is None else orjson.loads(row.usage),
        "model": row.model,
        "metadata": None if row.metadata is None else orjson.loads(row.metadata),
    }


def counts(row: OpenAIBatchRow) -> dict[str, int]:
    """total, completed (output lines: 2xx) and failed (error lines: the rest, canceled and expired too)."""
    if row.status is None:
        return {"total": 0, "completed": 0, "failed": 0}
    ok = row.n_succeeded or 0
    failed = (row.n_errored or 0) + (row.n_canceled or 0) + (row.n_expired or 0)
    return {"total": ok + failed + (row.n_processing or 0), "completed": ok, "failed": failed}


def page(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """A list page, as both lists answer: first_id / last_id null when empty."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def _stamp(ts: float | None) -> int | None:
    return None if ts is None else int(ts)
