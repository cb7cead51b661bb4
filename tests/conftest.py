"""Fixtures for every tier. Each tier keeps its own seams in its conftest.py (tests/unit/,
tests/integration/, tests/acceptance/); the fake upstreams are in tests/integration/backends_upstream.py
and the batchd child processes in tests/acceptance/server.py."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _scrub_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never inherit a developer's BATCHD_* or ANTHROPIC_* settings."""
    for name in list(os.environ):
        if name.startswith(("BATCHD_", "ANTHROPIC_")) and not name.startswith("BATCHD_TEST_"):
            monkeypatch.delenv(name)
