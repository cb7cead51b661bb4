"""Fixtures for every tier. Each tier keeps its own seams in its conftest.py (tests/unit/,
tests/integration/, tests/acceptance/); the fake upstreams are in tests/integration/backends_upstream.py
and the batchd child processes in tests/acceptance/server.py."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from batchd.tools import kit


@pytest.fixture(autouse=True)
def _scrub_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never inherit a developer's BATCHD_* or ANTHROPIC_* settings."""
    for name in list(os.environ):
        if name.startswith(("BATCHD_", "ANTHROPIC_")) and not name.startswith("BATCHD_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session", autouse=True)
def _no_container_litter() -> Iterator[None]:
    """A batchd run as root keeps its containers under /var/lib/batchd/containers/<digest> (see
    `batchd.tools.kit.containers_dir`): the folders the session's servers made there go with it."""
    shared = kit.SHARED_CONTAINERS
    before = set(os.listdir(shared)) if shared.is_dir() else set()
    yield
    if shared.is_dir():
        for name in set(os.listdir(shared)) - before:
            shutil.rmtree(shared / name, ignore_errors=True)
