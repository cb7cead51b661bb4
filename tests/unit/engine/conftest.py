"""Fixtures of the engine's tests: real SQLite stores (harness.py has the rest of the harness)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from batchd.store.sqlite import SQLiteStore
from tests.unit.engine.harness import NewStore, StoreT


@pytest.fixture
async def new_store(tmp_path: Path) -> AsyncIterator[NewStore]:
    """Opens a store of a given SQLiteStore class (a subclass overrides what a test watches)."""
    opened: list[SQLiteStore] = []

    async def new(cls: type[StoreT], /) -> StoreT:
        store = cls(str(tmp_path / f"engine{len(opened)}.db"))
        await store.open()
        opened.append(store)
        return store

    yield new
    for store in opened:
        await store.aclose()


@pytest.fixture
async def store(new_store: NewStore) -> SQLiteStore:
    return await new_store(SQLiteStore)
