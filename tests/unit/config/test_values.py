"""What a setting's text means: here, keys and whether a host is loopback."""

from __future__ import annotations

import pytest

from batchd import config, exceptions
from batchd.config import values


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1.2.3",
        "127.255.255.254",
        "::1",
        "0:0:0:0:0:0:0:1",
        "::ffff:127.0.0.1",
        "localhost",
        "LocalHost",
    ],
)
def test_loopback_addresses(host: str) -> None:
    assert values.is_loopback(host)


@pytest.mark.parametrize(
    "host",
    [
        "127.attacker.invalid",  # a name: anyone's DNS may point it anywhere
        "127.0.0.1.nip.io",
        "127.0.0.1.attacker.invalid",
        "127.0.0.1.",
        "127.1",  # inet_aton would read 127.0.0.1; a name to the resolver
        "localhost.attacker.invalid",
        "localhost.",
        "0.0.0.0",
        "::",
        "::ffff:10.0.0.1",
        "10.0.0.1",
        "[::1]",
        "",
    ],
)
def test_anything_else_is_not_loopback(host: str) -> None:
    assert not values.is_loopback(host)


@pytest.mark.parametrize("host", ["127.attacker.invalid", "127.0.0.1.nip.io"])
def test_a_hostile_name_needs_keys_to_bind(host: str) -> None:
    with pytest.raises(exceptions.ConfigError, match="needs api_keys"):
        config.Settings(host=host).check()
    config.Settings(host=host, api_keys={"k": "w"}).check()


@pytest.mark.parametrize(
    ("value", "keys"),
    [("a,b", {"a", "b"}), (" a , ,b ", {"a", "b"}), ("", set()), (["a", " b"], {"a", "b"})],
)
def test_keys(value: object, keys: set[str]) -> None:
    assert values.parse_keys(value) == keys


def test_metrics_keys_are_secret_in_the_settings_repr() -> None:
    text = repr(config.Settings(api_keys={"api-secret": "w"}, metrics_keys=frozenset({"prom-secret"})))
    assert "secret" not in text and "metrics_keys='<1 keys>'" in text
