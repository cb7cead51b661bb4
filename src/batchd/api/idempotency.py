"""`Idempotency-Key` on create (issue 17): the key and a digest of the body, for the store.

The store inserts the key's row in the transaction that creates the batch, so a retry finds the
batch whether the first answer was lost on the wire or the process died right after the commit;
the same key with the same body (compared by SHA-256) within `idempotency_window` answers the
original batch, with another body a 400 (`exceptions.IdempotencyConflict`). Keys are per workspace.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from pathlib import Path

from starlette.requests import Request

from batchd import exceptions
from batchd.api import quotas, services
from batchd.config.quotas import Quota
from batchd.store.base import Idempotency

HEADER = "idempotency-key"
MAX_KEY_CHARS = 255
OFFLOAD_BYTES = 1 << 20  # bodies at least this large are hashed off the event loop (~2 ms per MB)
# Tests only: the path of a marker file. With it set, the first create that commits an
# idempotency key creates the marker and kills its own process before answering (a crash between
# commit and response, made deterministic); later processes see the marker and answer normally.
KILL_AFTER_COMMIT_ENV = "BATCHD_TEST_KILL_AFTER_COMMIT"


async def admit(request: Request, svc: services.Services, workspace: str) -> Quota | None:
    """`quotas.admit`, but a create with an Idempotency-Key skips its early refusal: a replay answers
    the batch it names even in a full workspace. The store's check, in the create's transaction and
    after the key's, still refuses a new batch that does not fit."""
    if HEADER not in request.headers:
        return await quotas.admit(svc, workspace)
    quota = svc.settings.quota(workspace)
    return None if quota.unlimited else quota


async def key_of(request: Request, body: bytes | bytearray, window: float) -> Idempotency | None:
    """The request's idempotency key, None without the header; 400 for a malformed key."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 0 < len(key) <= MAX_KEY_CHARS or not key.isprintable() or key != key.strip():
        raise exceptions.InvalidRequest(
            f"Idempotency-Key: must be 1 to {MAX_KEY_CHARS} printable characters without surrounding spaces"
        )
    if len(body) < OFFLOAD_BYTES:
        digest = hashlib.sha256(body).hexdigest()
    else:
        digest = await asyncio.to_thread(lambda: hashlib.sha256(body).hexdigest())
    return Idempotency(key, digest, window)


def committed(idem: Idempotency | None) -> None:
    """Called once a create with `idem` has committed, before the answer (the test hook above)."""
    marker = os.environ.get(KILL_AFTER_COMMIT_ENV)
    if idem is None or not marker:
        return
    try:
        Path(marker).touch(exist_ok=False)
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGKILL)
