"""SQLite: a deleted or archived batch's rows dropped a few thousand keys per writer turn, and the
pages they freed given back to the file system.

One thread writes a SQLite file: a batch of 100,000 requests dropped in one transaction held the
writer for ~3 s on a 1,000,000-request file (claims and results waited), and archiving five at once
for ~25 s. Dropped in windows of DROP_KEYS keys, each its own transaction, the engine's writes take
their turns in between. The batch row goes (or is marked archived) in the last transaction, with
whatever rows are left: a process that dies half-way leaves the batch as it was, with part of its
rows gone, and the delete (or the next sweep's archival) finishes it.
"""

from __future__ import annotations

from batchd.store import layout, queries
from batchd.store.sqlite.db import Database

Q = queries.load("sqlite")
DROP_KEYS = 8192  # request keys whose rows one writer turn drops
FREE_PAGES = 512  # pages (2 MiB of 4 KiB) given back to the file system per writer turn
SWEEP_FREE_PAGES = 8192  # most pages (32 MiB) an archival sweep gives back: a large delete's over several


async def drop_in_turns(db: Database, seq: int) -> None:
    """Drops batch `seq`'s results, requests and params, DROP_KEYS keys per writer turn, until a
    window holds no request (a batch's keys are consecutive from its first)."""
    low, _ = layout.key_range(seq)
    while await db.write(_drop_window, db, low, low + DROP_KEYS - 1):
        low += DROP_KEYS


def _drop_window(db: Database, low: int, high: int) -> int:
    with db.transaction() as conn:
        conn.execute(Q["delete_results"], (low, high))
        conn.execute(Q["delete_params"], (low, high))
        return int(conn.execute(Q["delete_requests"], (low, high)).rowcount)


async def give_back(db: Database, most: int = SWEEP_FREE_PAGES) -> None:
    """Gives up to `most` free pages back to the file system, FREE_PAGES per turn of the writer,
    so that claims and results written meanwhile wait for one turn at most.

    An incremental vacuum moves pages from the end of the file into the free ones, so freeing the
    middle of a large file rewrites what follows it: that work is spread over the sweeps rather
    than held in one call (docs/benchmarks.md has its time).
    """
    for _ in range(0, most, FREE_PAGES):
        if not await db.write(db.free_pages, FREE_PAGES):
            return
