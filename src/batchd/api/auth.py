"""API keys to workspaces: `x-api-key` (SDK 0.x/1.x) or `Authorization: Bearer` (SDK 2.x)."""

from __future__ import annotations

from starlette.requests import Request

from batchd import exceptions

DEFAULT_WORKSPACE = "default"


def api_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def workspace(request: Request, keys: dict[str, str]) -> str:
    """The caller's workspace. With no keys configured every caller shares the default one."""
    if not keys:
        return DEFAULT_WORKSPACE
    key = api_key(request)
    if key is None:
        raise exceptions.AuthenticationFailed("x-api-key header is required (or Authorization: Bearer <key>)")
    found = keys.get(key)
    if found is None:
        raise exceptions.AuthenticationFailed("invalid x-api-key")
    return found
