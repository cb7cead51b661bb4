"""Configured webhook endpoints ([[webhooks]]): parsed, secrets read from the environment."""

from __future__ import annotations

import pytest

from batchd import config, exceptions
from batchd.config.webhooks import WebhookConfig, parse_webhooks

SECRET = "whsec_" + "A" * 32  # 24 bytes


def test_from_the_file_and_the_env(tmp_path: object) -> None:
    env = {"BATCHD_WEBHOOKS": '[{"url": "https://a.example/h", "secret_env": "S", "workspace": "team-a"}]'}
    (hook,) = config.load(environ=env).webhooks
    assert hook == WebhookConfig(url="https://a.example/h", secret_env="S", workspace="team-a")
    assert (
        hook.id.startswith("whep_config_")
        and hook.id == WebhookConfig("https://a.example/h", "T", "team-a").id
    )
    assert hook.id != WebhookConfig("https://a.example/h", "S").id  # another workspace, another endpoint
    assert hook.secret({"S": SECRET}) == SECRET


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ({"url": "https://x", "secret": SECRET}, "never sits in the file"),
        ({"url": "https://x"}, "secret_env is required"),
        ({"url": "https://x", "secret_env": "S", "extra": 1}, "unknown key 'extra'"),
        ("nope", "must be a table"),
    ],
)
def test_bad_tables(value: object, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        parse_webhooks([value])


@pytest.mark.parametrize(("env", "needle"), [({}, "not set"), ({"S": "whsec_c2hvcnQ="}, "24 to 64 bytes")])
def test_bad_secrets(env: dict[str, str], needle: str) -> None:
    with pytest.raises(exceptions.ConfigError, match=needle):
        WebhookConfig("https://x", "S").secret(env)
