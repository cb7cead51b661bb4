"""Durable state: batches, requests, results. `open_store(url)` picks the implementation."""

from __future__ import annotations

from batchd import exceptions
from batchd.store.base import Store


def open_store(url: str) -> Store:
    """A Store for `sqlite:///path` (or a bare path). PostgreSQL arrives with the scale-out work."""
    if url.startswith("sqlite:///"):
        from batchd.store.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        raise exceptions.ConfigError("database_url: PostgreSQL is not supported yet")
    if "://" not in url:
        from batchd.store.sqlite import SQLiteStore

        return SQLiteStore(url)
    raise exceptions.ConfigError(f"database_url: unsupported scheme in {url!r}")


__all__ = ["Store", "open_store"]
