"""A throwaway PostgreSQL database per test, cloned from a template migrated once per session.

The server comes from BATCHD_TEST_POSTGRES_URL (default: postgres on 127.0.0.1:5432, the CI
setup). Tests that need it are skipped, not failed, when no server answers.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import os
import urllib.parse
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from batchd.store.postgres import driver

ADMIN_URL = os.environ.get("BATCHD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
_PREFIX = f"batchd_t{os.getpid()}"
_TEMPLATE = _PREFIX + "_template"
_counter = itertools.count()
_state: dict[str, bool] = {}


def url_for(database: str) -> str:
    parts = urllib.parse.urlsplit(ADMIN_URL)
    return urllib.parse.urlunsplit(parts._replace(path="/" + database))


async def _admin() -> driver.Connection:
    from batchd.store.postgres import driver

    return await driver.connect(ADMIN_URL, timeout=3)


async def available() -> bool:
    if "available" not in _state:
        try:
            conn = await _admin()
        except Exception:
            _state["available"] = False
        else:
            await conn.close()
            _state["available"] = True
    return _state["available"]


async def _ensure_template() -> None:
    if _state.get("template"):
        return
    import asyncpg

    from batchd.store.postgres.db import migrate

    conn = await _admin()
    try:
        # Databases left by test sessions that died (named after their pid) go first.
        for (name,) in await conn.fetch("SELECT datname FROM pg_database WHERE datname ~ '^batchd_t[0-9]+_'"):
            pid = int(name[len("batchd_t") :].split("_", 1)[0])
            if pid != os.getpid() and not _alive(pid):
                await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.execute(f"DROP DATABASE IF EXISTS {_TEMPLATE} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {_TEMPLATE}")
    finally:
        await conn.close()
    tpl = await asyncpg.connect(url_for(_TEMPLATE), timeout=3)
    try:
        await migrate(tpl)
    finally:
        await tpl.close()
    _state["template"] = True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def create_database(*, migrated: bool = True) -> tuple[str, str]:
    """(name, url) of a fresh database (migrated, or empty); skips the test without a server."""
    if not await available():
        pytest.skip(f"no PostgreSQL server at {ADMIN_URL} (set BATCHD_TEST_POSTGRES_URL)")
    if migrated:
        await _ensure_template()
    name = f"{_PREFIX}_{next(_counter)}"
    conn = await _admin()
    try:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE if migrated else 'template0'}")
    finally:
        await conn.close()
    return name, url_for(name)


async def drop_database(name: str) -> None:
    conn = await _admin()
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


@atexit.register
def _drop_template() -> None:
    if _state.pop("template", False):
        with contextlib.suppress(Exception):
            asyncio.run(drop_database(_TEMPLATE))


def create_database_sync() -> tuple[str, str]:
    return asyncio.run(create_database())


def drop_database_sync(name: str) -> None:
    asyncio.run(drop_database(name))
