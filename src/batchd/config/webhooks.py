"""Webhook endpoints declared in the configuration (`[[webhooks]]`), beside those made over the API.

Each names its workspace, its URL and the environment variable that holds its `whsec_` secret (a
secret never sits in the file, as a route's key does not). At start the engine makes the store's
configured endpoints exactly these (`Store.sync_config_webhook_endpoints`); their ids are derived
from workspace and URL, so every process of a fleet agrees on them.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
from collections.abc import Mapping
from typing import Any

from batchd import exceptions
from batchd.config import values

CONFIG_ID_PREFIX = "whep_config_"  # the ids of configured endpoints; the API cannot delete these
SECRET_PREFIX = "whsec_"
_KEYS = frozenset({"workspace", "url", "secret_env"})
DEFAULT_WORKSPACE = "default"  # the workspace of every caller when no api_keys are set


@dataclasses.dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret_env: str  #: the environment variable holding the endpoint's whsec_ secret
    workspace: str = DEFAULT_WORKSPACE

    @property
    def id(self) -> str:
        digest = hashlib.sha256(f"{self.workspace}\n{self.url}".encode()).hexdigest()
        return CONFIG_ID_PREFIX + digest[:24]

    def secret(self, environ: Mapping[str, str] | None = None) -> str:
        """The secret, read from `secret_env`; ConfigError when unset or not a whsec_ secret."""
        value = (os.environ if environ is None else environ).get(self.secret_env, "").strip()
        where = f"webhooks ({self.url}): secret_env names {self.secret_env}"
        if not value:
            raise exceptions.ConfigError(f"{where}, which is not set")
        try:
            key = base64.b64decode(value.removeprefix(SECRET_PREFIX), validate=True)
        except binascii.Error:
            key = b""
        if not value.startswith(SECRET_PREFIX) or not 24 <= len(key) <= 64:
            raise exceptions.ConfigError(f"{where}, which is not whsec_ and the base64 of 24 to 64 bytes")
        return value


def parse_webhooks(value: Any) -> tuple[WebhookConfig, ...]:
    """A list of tables (TOML) or a JSON array (env) -> endpoints. Raises ValueError."""
    return values.parse_tables(value, "webhooks", "endpoint", WebhookConfig, _parse)


def _parse(index: int, item: Any) -> WebhookConfig:
    where = f"webhooks[{index}]"
    if not isinstance(item, dict):
        raise ValueError(f"{where}: must be a table with url and secret_env")
    if "secret" in item:
        raise ValueError(
            f"{where}: the secret never sits in the file: set secret_env to the variable holding it"
        )
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    for key in ("url", "secret_env"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise ValueError(f"{where}: {key} is required and must be a non-empty string")
    workspace = item.get("workspace", DEFAULT_WORKSPACE)
    if not isinstance(workspace, str) or not workspace:
        raise ValueError(f"{where}: workspace must be a non-empty string")
    return WebhookConfig(url=item["url"], secret_env=item["secret_env"], workspace=workspace)
