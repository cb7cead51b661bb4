"""The keys a process accepts: `api_keys` from the settings and, with `managed_keys`, the store's.

Every key is looked up by its SHA-256, never compared as text: the digest of a guess says nothing
about the digests stored (a lookup that finds no match, or a near one, tells the caller nothing
about any key), and the one found is then compared in constant time. The store's keys are 32
random bytes, so a plain SHA-256 is enough to keep them: there is nothing to brute-force that a
slow, salted hash would protect (those are for passwords people choose).

A managed key found is remembered for at most CACHE_TTL seconds, so a revocation (or an expiry)
takes effect on every process of a fleet within that time without a restart, and a busy key costs
one store read per process per CACHE_TTL. Its last use is written at most once every TOUCH_EVERY
seconds, off the request's path.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import logging
import re
import secrets
import time

from batchd import exceptions, models
from batchd.config import Settings
from batchd.store import Store
from batchd.store.base import ApiKey

logger = logging.getLogger("batchd.api")

CACHE_TTL = 1.0  # seconds a managed key's row is reused before the store is read again
CACHE_MAX = 10_000  # rows remembered (found or not); past it the oldest half is forgotten
TOUCH_EVERY = 60.0  # seconds: a key's last use is written at most this often
KEY_PREFIX = "bk-"  # a managed key: bk- + 43 url-safe characters (32 random bytes)
KEY_BYTES = 32


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    """Who a request comes from."""

    workspace: str
    admin: bool = False  #: may use the admin API
    key_id: str | None = None  #: the managed key's id; None for a key of `api_keys` or no key


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def new_key_id() -> str:
    return "key_" + models.new_batch_id().removeprefix("msgbatch_")


def live(key: ApiKey, now: float) -> bool:
    """Whether a managed key may be used at `now`: not revoked, not expired."""
    return key.revoked_at is None and (key.expires_at is None or now < key.expires_at)


class Keyring:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._configured = {digest(k): ws for k, ws in settings.api_keys.items()}
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}  # digest -> (monotonic, row)
        self._touched: dict[str, float] = {}  # key id -> monotonic time this process last wrote it
        self._tasks: set[asyncio.Task[None]] = set()

    async def caller(self, key: str) -> Caller | None:
        """The caller `key` stands for, or None if no accepted key has it."""
        found = digest(key)
        workspace = self._configured.get(found)
        if workspace is not None:
            return Caller(workspace)
        if not self.settings.managed_keys:
            return None
        row = await self._managed(found)
        # The digest matched a dict or index entry; compare it again in constant time anyway.
        if row is None or not hmac.compare_digest(row.digest, found) or not live(row, time.time()):
            return None
        self._touch(row)
        return Caller(row.workspace, admin=row.admin, key_id=row.id)

    async def _managed(self, found: str) -> ApiKey | None:
        now = time.monotonic()
        cached = self._cache.get(found)
        if cached is not None and now - cached[0] < CACHE_TTL:
            return cached[1]
        row = await self.store.find_api_key(found)
        if len(self._cache) >= CACHE_MAX:
            for stale in list(self._cache)[: CACHE_MAX // 2]:
                del self._cache[stale]
        self._cache[found] = (now, row)
        return row

    def forget(self, key_id: str) -> None:
        """Drops a key from this process's cache at once (it was revoked here)."""
        self._cache = {
            d: entry for d, entry in self._cache.items() if entry[1] is None or entry[1].id != key_id
        }

    def _touch(self, row: ApiKey) -> None:
        now = time.monotonic()
        if now - self._touched.get(row.id, -TOUCH_EVERY) < TOUCH_EVERY:
            return
        wall = time.time()
        if row.last_used_at is not None and wall - row.last_used_at < TOUCH_EVERY:
            return
        self._touched[row.id] = now
        task = asyncio.create_task(self._write_use(row.id, wall), name=f"batchd touch key {row.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write_use(self, key_id: str, now: float) -> None:
        try:
            await self.store.touch_api_key(key_id, now, every=TOUCH_EVERY)
        except Exception as exc:  # a last-use time is not worth failing anything for
            logger.warning("could not record the use of key %s: %s", key_id, exc)


WORKSPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_NAME = 100  # characters of a key's name


def make(
    *, workspace: str, name: str, admin: bool, now: float, expires_at: float | None
) -> tuple[str, ApiKey]:
    """A new managed key: (the key itself, to show once; the row to store, holding its digest)."""
    if not WORKSPACE.match(workspace):
        raise exceptions.InvalidRequest(
            f"workspace: {workspace[:80]!r} is not a workspace name (1-64 letters, digits, '_', '.', '-')"
        )
    if len(name) > MAX_NAME:
        raise exceptions.InvalidRequest(f"name: at most {MAX_NAME} characters")
    if expires_at is not None and expires_at <= now:
        raise exceptions.InvalidRequest("expires_at: must be in the future")
    key = new_key()
    row = ApiKey(
        id=new_key_id(),
        digest=digest(key),
        workspace=workspace,
        name=name,
        admin=admin,
        created_at=now,
        last_used_at=None,
        expires_at=expires_at,
        revoked_at=None,
    )
    return key, row


def render(key: ApiKey) -> dict[str, object]:
    """A managed key as the admin API and `batchd keys` show it (never its digest)."""
    return {
        "id": key.id,
        "type": "api_key",
        "workspace": key.workspace,
        "name": key.name,
        "admin": key.admin,
        "created_at": models.rfc3339(key.created_at),
        "last_used_at": models.rfc3339(key.last_used_at),
        "expires_at": models.rfc3339(key.expires_at),
        "revoked_at": models.rfc3339(key.revoked_at),
    }
