"""The OpenAI wire's rows (issue 16) and the Store members that keep them: `OpenAIMethods`, which
the Store protocol includes (store/sqlite/openai.py and store/postgres/openai.py implement it).

An OpenAI batch is an engine batch (the same id in `batches`) plus an `openai_batches` row created
in the same transaction; a batch that failed validation has the row only. An uploaded file is a row
and its bytes in chunks; an output or error file is a closed batch's results, listed beside them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import NamedTuple, Protocol

from batchd.config.quotas import Quota

CHUNK_BYTES = 1 << 20  #: bytes of one stored chunk of an uploaded file
INCOMPLETE_TTL = 3600.0  #: seconds after which an upload that never completed (a crash) is swept


class OpenAIFile(NamedTuple):
    """A file the OpenAI wire lists: an upload, or a batch's output or error file."""

    id: str
    workspace: str
    filename: str
    purpose: str
    bytes: int
    created_at: float
    expires_at: float | None  #: None: kept until deleted


class OpenAIBatch(NamedTuple):
    """What a create writes to `openai_batches` (the engine batch holds the rest)."""

    id: str
    workspace: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: str | None  #: JSON
    model: str | None
    created_at: float
    expires_at: float
    failed_at: float | None  #: set, with `errors`, when validation failed: no engine batch then
    errors: str | None  #: JSON list
    output_expires_after: float
    output_file_id: str
    error_file_id: str


class OpenAIBatchRow(NamedTuple):
    """An OpenAI batch as read (`openai_fetch_batch`, `openai_list_*`): its row and its engine
    batch's status and counts (None for a batch that failed validation)."""

    seq: int
    id: str
    workspace: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: str | None
    model: str | None
    created_at: float
    expires_at: float
    failed_at: float | None
    errors: str | None
    output_expires_after: float
    output_file_id: str
    error_file_id: str
    closed_at: float | None
    output_bytes: int | None
    error_bytes: int | None
    usage: str | None
    engine_seq: int | None
    status: str | None  #: the engine batch's models.ProcessingStatus
    ended_at: float | None
    cancel_initiated_at: float | None
    archived_at: float | None
    n_processing: int | None
    n_succeeded: int | None
    n_errored: int | None
    n_canceled: int | None
    n_expired: int | None


class Closing(NamedTuple):
    """What closing an ended batch records: its files' sizes, usage and expiry."""

    closed_at: float
    output_bytes: int
    error_bytes: int
    usage: str | None  #: JSON
    files_expire_at: float


class OpenAIMethods(Protocol):
    async def begin_openai_file(self, file: OpenAIFile) -> None:
        """Stores a new file's row, not yet listed: its chunks follow, then `complete_openai_file`."""
        ...

    async def put_openai_chunks(self, file_id: str, first: int, chunks: Sequence[bytes]) -> None:
        """Stores chunks number `first`, `first + 1`, … of the file, in one transaction."""
        ...

    async def complete_openai_file(self, file: OpenAIFile) -> None:
        """The upload is whole: the file (its name, purpose, size and expiry as given now) is listed
        from now on."""
        ...

    async def drop_openai_file(self, file_id: str) -> None:
        """Forgets an upload that did not complete (refused, or its client left), chunks and all."""
        ...

    async def get_openai_file(self, workspace: str, file_id: str, *, now: float) -> OpenAIFile | None:
        """The workspace's file (upload, output or error file), unless deleted or expired at `now`."""
        ...

    async def list_openai_files(
        self,
        workspace: str,
        *,
        now: float,
        limit: int,
        after: OpenAIFile | None,
        ascending: bool,
        purpose: str | None,
    ) -> list[OpenAIFile]:
        """The workspace's files by (created_at, id), newest first unless `ascending`, those after
        `after` in that order; only those of `purpose` if given."""
        ...

    def iter_openai_chunks(self, file_id: str) -> AsyncIterator[bytes]:
        """An uploaded file's bytes, chunk by chunk, in order (the caller found the file first)."""
        ...

    async def delete_openai_file(self, workspace: str, file_id: str) -> bool:
        """Deletes an upload, or unlists a batch's output or error file; False if there is none."""
        ...

    async def expire_openai_files(self, *, now: float) -> int:
        """Drops every upload past its expires_at, and uploads left incomplete for INCOMPLETE_TTL."""
        ...

    async def create_openai_batch(
        self,
        batch: OpenAIBatch,
        *,
        custom_ids: Sequence[str],
        params: Sequence[bytes],
        quota: Quota | None,
    ) -> None:
        """Stores the batch's row and, unless it failed validation, its engine batch of `params`
        (the same id, expiring at `batch.expires_at`), in one transaction. Raises QuotaExceeded with
        nothing stored when the engine batch does not fit the workspace's quota."""
        ...

    async def get_openai_batch(self, workspace: str, batch_id: str) -> OpenAIBatchRow | None: ...

    async def find_openai_output(self, workspace: str, file_id: str) -> OpenAIBatchRow | None:
        """The batch whose output or error file has this id."""
        ...

    async def list_openai_batches(
        self, workspace: str, *, after_id: str | None, limit: int
    ) -> tuple[list[OpenAIBatchRow], bool]:
        """Newest first, those older than `after_id` (unknown: none); (page, has_more)."""
        ...

    async def unclosed_openai_batches(self, workspace: str) -> list[OpenAIBatchRow]:
        """The workspace's batches whose engine batch has ended and that are not closed yet."""
        ...

    async def close_openai_batch(self, batch_id: str, closing: Closing) -> None:
        """Records `closing` unless the batch was closed already (the first close wins)."""
        ...

    def iter_openai_results(self, engine_seq: int) -> AsyncIterator[list[tuple[int, str, bytes]]]:
        """The engine batch's results as pages of (key, type, line), in key order."""
        ...
