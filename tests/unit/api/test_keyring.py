"""The keys a process accepts (api/keyring.py), over a real SQLite store: configured and managed
keys, revocation seen through the cache within its TTL, expiry, last use recorded off the request's path."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from batchd import config
from batchd.api import keyring
from batchd.store import Store, open_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'keys.db'}")
    await s.open()
    yield s
    await s.aclose()


def _settings(**env: str) -> config.Settings:
    return config.load(environ={f"BATCHD_{k.upper()}": v for k, v in env.items()})


async def test_configured_and_managed_keys_name_their_workspaces(store: Store) -> None:
    ring = keyring.Keyring(_settings(api_keys="plain:team-p", managed_keys="true"), store)
    secret, row = keyring.make(workspace="team-m", name="ci", admin=True, now=time.time(), expires_at=None)
    await store.create_api_key(row)
    assert await ring.caller("plain") == keyring.Caller("team-p")
    assert await ring.caller(secret) == keyring.Caller("team-m", admin=True, key_id=row.id)
    assert await ring.caller(secret[:-1]) is None
    assert await keyring.Keyring(_settings(api_keys="plain:team-p"), store).caller(secret) is None  # off


async def test_a_revocation_elsewhere_is_seen_within_the_cache_ttl(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyring, "CACHE_TTL", 0.2)
    ring = keyring.Keyring(_settings(managed_keys="true"), store)
    secret, row = keyring.make(workspace="w", name="", admin=False, now=time.time(), expires_at=None)
    await store.create_api_key(row)
    assert await ring.caller(secret) is not None
    await store.revoke_api_key(row.id, time.time())  # as another process would
    assert await ring.caller(secret) is not None  # remembered, for at most the TTL
    await asyncio.sleep(0.25)
    assert await ring.caller(secret) is None


async def test_an_expired_key_is_refused_and_its_use_is_recorded(store: Store) -> None:
    ring = keyring.Keyring(_settings(managed_keys="true"), store)
    now = time.time()
    secret, row = keyring.make(workspace="w", name="", admin=False, now=now, expires_at=now + 0.3)
    await store.create_api_key(row)
    for _ in range(5):
        assert await ring.caller(secret) is not None
    await asyncio.sleep(0.05)  # the write of the last use runs off the request's path
    first = (await store.find_api_key(row.digest)).last_used_at  # type: ignore[union-attr]
    assert first is not None and now <= first
    await asyncio.sleep(0.3)
    assert await ring.caller(secret) is None
