"""Every PostgreSQL advisory lock batchd takes, declared here so that no two uses share a key.

batchd's own locks live in PostgreSQL's one-bigint key space: the fixed keys below are small
positive numbers, a worker's liveness lock (`worker_key`) is a negative one. A route's fleet slots
live in the two-int space, (route key, slot number) with `route_key(name)` first, so they never
meet the others.
"""

from __future__ import annotations

import hashlib
import zlib

MIGRATE = 7439000  # session lock held while migrating (several processes may start at once)
CLAIM = 7439001  # transaction lock serialising claims while the running requests are capped
# Transaction locks of the sweeps: whichever process takes one runs that sweep, the others skip it.
EXPIRE = 7439002
RECOVER = 7439003
ARCHIVE = 7439004
HOOKS = 7439017  # the idempotency-key and webhook-event sweep (issue 17)


def route_key(name: str) -> int:
    """A route's name -> the first (int4) key of its slots' advisory locks."""
    key = zlib.crc32(b"batchd route " + name.encode())
    return key - (1 << 32) if key >= 1 << 31 else key


def worker_key(identity: str) -> int | None:
    """A worker identity (`host:pid:random/epoch`, see liveness.py) -> its liveness lock's key.

    None for an identity without an epoch: a claimer that holds no liveness lock (a batchd from
    before liveness, mid-upgrade), whose claims are leases alone.
    """
    if "/" not in identity:
        return None
    digest = hashlib.blake2b(identity.encode(), digest_size=8).digest()
    return -1 - (int.from_bytes(digest) >> 2)  # in [-2**62, -1]: below every fixed key


def quota_key(workspace: str) -> int:
    """A workspace -> the key of the transaction lock its creates take for the quota check."""
    digest = hashlib.blake2b(b"batchd quota " + workspace.encode(), digest_size=8).digest()
    return (1 << 62) + (int.from_bytes(digest) >> 2)  # in [2**62, 2**63): above every fixed key
