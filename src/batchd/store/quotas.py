"""The quota rule both stores apply inside a create's transaction: does a new batch fit?"""

from __future__ import annotations

from batchd import exceptions
from batchd.config.quotas import Quota
from batchd.store.base import Usage

RETRY_QUEUED = 10  # seconds: requests drain as the engine runs them
RETRY_STORED = 300  # seconds: bytes are freed only when batches are deleted or archived


def check(quota: Quota, usage: Usage, *, requests: int, stored_bytes: int) -> None:
    """Raises QuotaExceeded if a batch of `requests` requests and `stored_bytes` bytes of params does
    not fit in what `usage` leaves of `quota`; a workspace exactly at a limit takes nothing more."""
    ws = usage.workspace
    if quota.batches and usage.batches + 1 > quota.batches:
        raise exceptions.QuotaExceeded(
            f"Workspace {ws!r} has {usage.batches} batches in progress, its quota "
            f"(quota_batches): wait for one to end",
            retry_after=RETRY_QUEUED,
        )
    if quota.queued_requests and usage.queued_requests + requests > quota.queued_requests:
        raise exceptions.QuotaExceeded(
            f"Workspace {ws!r} has {usage.queued_requests} requests queued of its quota of "
            f"{quota.queued_requests} (quota_queued_requests): this batch's {requests} do not fit",
            retry_after=RETRY_QUEUED,
        )
    if quota.stored_bytes and usage.stored_bytes + stored_bytes > quota.stored_bytes:
        raise exceptions.QuotaExceeded(
            f"Workspace {ws!r} stores {usage.stored_bytes} bytes of requests of its quota of "
            f"{quota.stored_bytes} (quota_stored_bytes): this batch's {stored_bytes} do not fit; "
            "delete ended batches to make room",
            retry_after=RETRY_STORED,
        )
