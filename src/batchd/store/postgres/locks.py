"""Every PostgreSQL advisory lock batchd takes, declared here so that no two uses share a key.

batchd's own locks live in PostgreSQL's one-bigint key space. A route's fleet slots live in the
two-int space, (route key, slot number) with `route_key(name)` first, so the two never meet.
"""

from __future__ import annotations

import zlib

MIGRATE = 7439000  # session lock held while migrating (several processes may start at once)
CLAIM = 7439001  # transaction lock serialising claims while the running requests are capped
# Transaction locks of the sweeps: whichever process takes one runs that sweep, the others skip it.
EXPIRE = 7439002
RECOVER = 7439003
ARCHIVE = 7439004


def route_key(name: str) -> int:
    """A route's name -> the first (int4) key of its slots' advisory locks."""
    key = zlib.crc32(b"batchd route " + name.encode())
    return key - (1 << 32) if key >= 1 << 31 else key
