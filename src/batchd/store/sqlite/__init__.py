"""The embedded store: one SQLite file, one writer thread (db.py), the domain operations (store.py)."""

from __future__ import annotations

from batchd.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
