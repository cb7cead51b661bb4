"""Quotas per workspace in the settings: defaults, `[quotas.NAME]` tables, BATCHD_QUOTAS."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchd import config, exceptions
from batchd.config.quotas import Quota


def test_a_workspace_table_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "batchd.toml"
    path.write_text(
        'quota_batches = 5\nquota_stored_bytes = "1GB"\n\n'
        "[quotas.team-a]\nqueued_requests = 100\nbatches = 0\n"
    )
    settings = config.load(config_file=str(path), environ={})
    assert settings.quota("team-a") == Quota(queued_requests=100, batches=0, stored_bytes=1 << 30)
    assert settings.quota("team-b") == Quota(queued_requests=0, batches=5, stored_bytes=1 << 30)
    assert config.load(environ={}).quota("any").unlimited


def test_quotas_from_the_environment_as_json() -> None:
    settings = config.load(environ={"BATCHD_QUOTAS": '{"ci": {"stored_bytes": "10MB", "batches": 2}}'})
    assert settings.quota("ci") == Quota(batches=2, stored_bytes=10 << 20)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"ci": {"requests": 1}}', "unknown quota 'requests'"),
        ('{"ci": {"batches": -1}}', "must be 0 (no limit) or more"),
        ('{"ci": 3}', "expected a table"),
        ("[1", "not a JSON object"),
    ],
)
def test_a_bad_quota_table_is_refused_at_start(text: str, problem: str) -> None:
    with pytest.raises(exceptions.ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        config.load(environ={"BATCHD_QUOTAS": text})


def test_managed_keys_allow_a_public_bind() -> None:
    with pytest.raises(exceptions.ConfigError, match="needs api_keys"):
        config.load(environ={"BATCHD_HOST": "0.0.0.0"})
    settings = config.load(environ={"BATCHD_HOST": "0.0.0.0", "BATCHD_MANAGED_KEYS": "true"})
    assert settings.keys_required
