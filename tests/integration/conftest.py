"""Store fixtures shared by the integration tests: a store of each kind, fresh PostgreSQL databases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from batchd.store import Store, open_store
from tests.integration import pg

if TYPE_CHECKING:
    from batchd.store.postgres import PostgresStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An open store of each kind (the contract suite runs on both), on a fresh database."""
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'contract.db'}")
        await s.open()
        yield s
        await s.aclose()
        return
    name, url = await pg.create_database()
    s = open_store(url)
    await s.open()
    yield s
    await s.aclose()
    await pg.drop_database(name)


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """The URL of a fresh, migrated PostgreSQL database, dropped after the test."""
    name, url = await pg.create_database()
    yield url
    await pg.drop_database(name)


@pytest.fixture
async def fleet(pg_url: str) -> AsyncIterator[Callable[..., Awaitable[PostgresStore]]]:
    """Opens any number of stores on one fresh database, as separate processes would; keyword
    arguments go to open_store."""
    from batchd.store.postgres import PostgresStore

    opened: list[PostgresStore] = []

    async def connect(**options: Any) -> PostgresStore:
        store = open_store(pg_url, **options)
        assert isinstance(store, PostgresStore)
        await store.open()
        opened.append(store)
        return store

    yield connect
    for store in opened:
        await store.aclose()
