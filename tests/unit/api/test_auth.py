"""Keys: whose workspace a request acts in, and who may read the metrics."""

from __future__ import annotations

import pytest

from batchd import config, exceptions
from batchd.api import auth

KEYS = {"alpha-key": "alpha", "beta-key": "beta"}


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ({"x-api-key": "k"}, "k"),
        ({"authorization": "Bearer k"}, "k"),
        ({"authorization": "bearer  k "}, "k"),
        ({"x-api-key": "k", "authorization": "Bearer other"}, "k"),
        ({"authorization": "Basic k"}, None),
        ({"authorization": "Bearer "}, None),
        ({}, None),
    ],
)
def test_key_in_headers(headers: dict[str, str], key: str | None) -> None:
    assert auth.key_in(headers) == key


def test_without_any_keys_anyone_reads_the_metrics() -> None:
    auth.metrics_reader({}, config.Settings())


@pytest.mark.parametrize("api_keys", [KEYS, {}])
def test_with_keys_only_a_metrics_key_reads_the_metrics(api_keys: dict[str, str]) -> None:
    settings = config.Settings(api_keys=api_keys, metrics_keys=frozenset({"prom", "prom-2"}))
    auth.metrics_reader({"authorization": "Bearer prom"}, settings)
    auth.metrics_reader({"x-api-key": "prom-2"}, settings)
    with pytest.raises(exceptions.AuthenticationFailed, match="header is required"):
        auth.metrics_reader({}, settings)
    with pytest.raises(exceptions.AuthenticationFailed, match="invalid x-api-key"):
        auth.metrics_reader({"x-api-key": "guess"}, settings)


def test_a_workspace_key_never_reads_the_metrics() -> None:
    for metrics_keys in (frozenset(), frozenset({"prom"})):
        settings = config.Settings(api_keys=KEYS, metrics_keys=metrics_keys)
        with pytest.raises(exceptions.PermissionDenied, match="metrics_keys"):
            auth.metrics_reader({"x-api-key": "alpha-key"}, settings)


def test_a_key_listed_in_both_is_both() -> None:
    settings = config.Settings(api_keys=KEYS, metrics_keys=frozenset({"alpha-key"}))
    auth.metrics_reader({"x-api-key": "alpha-key"}, settings)
