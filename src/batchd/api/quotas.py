"""Quotas per workspace at create: refused early when a workspace is already full.

The check that counts is the store's, in the create's own transaction (`Store.create_batch(quota=)`),
which holds under concurrent creates; this one only spares reading a body that cannot fit.
"""

from __future__ import annotations

from batchd.api import services
from batchd.config.quotas import Quota
from batchd.store import quotas


async def admit(svc: services.Services, workspace: str) -> Quota | None:
    """The workspace's quota to create under (None: unlimited); raises QuotaExceeded if it is full
    already (no batch, of at least one request and one byte, would fit)."""
    quota = svc.settings.quota(workspace)
    if quota.unlimited:
        return None
    for usage in await svc.store.usage(workspace):
        quotas.check(quota, usage, requests=1, stored_bytes=1)
    return quota
