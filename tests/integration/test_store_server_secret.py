"""`Store.server_secret` on each store: created once, the same for every later call and for every
process opening the same store, even when they ask at the same moment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from batchd.store import Store, open_store
from batchd.store.base import SECRET_BYTES
from tests.integration import pg


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'secret.db'}"
        return
    name, found = await pg.create_database()
    yield found
    await pg.drop_database(name)


async def test_a_secret_is_created_once_and_shared_by_every_process(url: str) -> None:
    # A fleet's processes (one per SQLite file: that store takes one process).
    stores: list[Store] = [open_store(url) for _ in range(1 if url.startswith("sqlite") else 4)]
    for s in stores:
        await s.open()
    try:
        # All ask at once for a secret nobody has made yet: one value wins, everywhere.
        first = await asyncio.gather(*(s.server_secret("tools") for s in stores for _ in range(3)))
        assert len(set(first)) == 1 and len(first[0]) == SECRET_BYTES
        assert await stores[0].server_secret("tools") == first[0]
        other = await stores[-1].server_secret("another")
        assert len(other) == SECRET_BYTES and other != first[0]
    finally:
        for s in stores:
            await s.aclose()
    again = open_store(url)  # and after every process restarted
    await again.open()
    try:
        assert await again.server_secret("tools") == first[0]
    finally:
        await again.aclose()


async def test_every_process_of_a_store_mints_tokens_the_others_read(url: str, tmp_path: Path) -> None:
    """Without `server_tools_key`, the token key is the store's secret, not a file per machine:
    processes on two machines (two data directories) read each other's `encrypted_content`."""
    from batchd import config, exceptions
    from batchd.engine.router import tools_secret
    from batchd.tools.kit import ToolKit

    s = open_store(url)
    await s.open()
    try:
        machines = [config.Settings(data_dir=str(tmp_path / f"machine{i}")) for i in range(2)]
        kits = [ToolKit(m, secret=await tools_secret(s, m)) for m in machines]
        token = kits[0].tokens.encode("content", {"url": "https://a.example/", "text": "x"})
        assert kits[1].tokens.decode("content", token, "t")["text"] == "x"
        assert not (tmp_path / "machine0").exists()  # no key file written
        # A key that is set wins over the store's (and is then the operator's to share).
        keyed = config.Settings(data_dir=str(tmp_path / "m"), server_tools_key="s3cret")
        assert await tools_secret(s, keyed) is None
        with pytest.raises(exceptions.InvalidParams):
            ToolKit(keyed, secret=None).tokens.decode("content", token, "t")
    finally:
        await s.aclose()
