"""API keys to workspaces: `x-api-key` (SDK 0.x/1.x) or `Authorization: Bearer` (SDK 2.x).

`caller` is the one place that decides who a request comes from, for every route and the
dashboard: the keys of `api_keys` and, with `managed_keys`, the store's (api/keyring.py). With no
keys required (a loopback bind without either) every caller shares the default workspace and may
use the admin API, as anyone on the machine could read the data directory anyway.

The metrics are the operator's, not a workspace's (they name every workspace's models): with keys
configured only a key in `metrics_keys` reads them (`metrics_reader`), at `/metrics` and at a
worker's metrics port alike.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request

from batchd import exceptions
from batchd.api import services
from batchd.api.keyring import Caller
from batchd.config import Settings

DEFAULT_WORKSPACE = "default"
KEY_REQUIRED = "x-api-key header is required (or Authorization: Bearer <key>)"


def api_key(request: Request) -> str | None:
    return key_in(request.headers)


def key_in(headers: Mapping[str, str]) -> str | None:
    """The key a request's headers carry (`headers` looked up by lower-case name), if any."""
    key = headers.get("x-api-key")
    if key:
        return key
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def caller(request: Request) -> Caller:
    """Who sent `request`: raises AuthenticationFailed without an accepted key (when one is needed)."""
    svc = services.of(request)
    if not svc.settings.keys_required:
        return Caller(DEFAULT_WORKSPACE, admin=True)
    key = api_key(request)
    if key is None:
        raise exceptions.AuthenticationFailed(KEY_REQUIRED)
    found = await svc.keyring.caller(key)
    if found is None:
        raise exceptions.AuthenticationFailed("invalid x-api-key")
    return found


async def workspace(request: Request) -> str:
    """The caller's workspace (see `caller`)."""
    return (await caller(request)).workspace


async def admin(request: Request) -> Caller:
    """The caller, if it may use the admin API; else raises (PermissionDenied for other keys)."""
    found = await caller(request)
    if not found.admin:
        raise exceptions.PermissionDenied(
            "This route needs an admin key (batchd keys create --admin); this key is not one"
        )
    return found


def metrics_reader(headers: Mapping[str, str], settings: Settings) -> None:
    """Lets the operator read the metrics, else raises.

    With no keys configured at all (a loopback bind) anyone may, as anyone may use the API. Else
    only a key listed in `metrics_keys`: a workspace's API key is refused (PermissionDenied), so
    one workspace never learns another's models; no key or an unknown one is AuthenticationFailed.
    """
    if not settings.keys_required and not settings.metrics_keys:
        return
    key = key_in(headers)
    if key is None:
        raise exceptions.AuthenticationFailed(KEY_REQUIRED)
    if key in settings.metrics_keys:
        return
    if key in settings.api_keys:
        raise exceptions.PermissionDenied(
            "The metrics are the operator's: read them with a key listed in metrics_keys, not an API key"
        )
    raise exceptions.AuthenticationFailed("invalid x-api-key")


async def metrics_access(request: Request) -> None:
    """`metrics_reader` for `/metrics` on `batchd serve`, where admin keys of the store may read
    the metrics too: they see every workspace already."""
    settings = services.of(request).settings
    try:
        metrics_reader(request.headers, settings)
    except exceptions.ApiError:
        key = key_in(request.headers)
        found = await services.of(request).keyring.caller(key) if key else None
        if found is None:
            raise
        if not found.admin:
            raise exceptions.PermissionDenied(
                "The metrics are the operator's: read them with a key of metrics_keys or an admin key"
            ) from None
