"""The shared store for a fleet: PostgreSQL through asyncpg (db.py), fleet-wide route slots
(slots.py), the domain operations (store.py)."""

from __future__ import annotations

from batchd.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
