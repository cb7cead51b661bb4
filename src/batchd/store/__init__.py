"""Durable state: batches, requests, results. `open_store(url)` picks the implementation."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

from batchd import exceptions
from batchd.store.base import Store


def open_store(url: str, *, max_running: int = 0, weights: Mapping[str, float] | None = None) -> Store:
    """A Store for `sqlite:///path` (or a bare path) or `postgresql://...`.

    max_running: PostgreSQL only; most requests running at once across every process (0: no cap).
    weights: per workspace, its share of the claims (config/weights.py; 1 when not named).
    """
    if url.startswith("sqlite:///"):
        from batchd.store.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"), weights=weights)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from batchd.store.postgres import PostgresStore
        except ImportError as exc:  # pragma: no cover - the driver is an optional extra
            raise exceptions.ConfigError(
                "database_url: PostgreSQL needs the asyncpg driver (pip install 'batchd[postgres]')"
            ) from exc
        return PostgresStore(url, max_running=max_running, weights=weights)
    if "://" not in url:
        from batchd.store.sqlite import SQLiteStore

        return SQLiteStore(url, weights=weights)
    raise exceptions.ConfigError(f"database_url: unsupported scheme in {url!r}")


def redacted_url(url: str) -> str:
    """The store URL without its password, for logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


__all__ = ["Store", "open_store", "redacted_url"]
