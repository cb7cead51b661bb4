"""The admin API, for admin keys only (`auth.admin`): managed keys and every workspace's usage.

    GET    /v1/admin/keys[?workspace=W]   the managed keys, oldest first (revoked ones too)
    POST   /v1/admin/keys                 {"workspace", "name"?, "admin"?, "expires_in"?} -> the key,
                                          its secret in "key", shown this once
    DELETE /v1/admin/keys/{key_id}        revokes it on every process (within keyring.CACHE_TTL)
    GET    /v1/admin/usage[?workspace=W]  what each workspace holds, next to its quota

An admin key sees every workspace here; on the batch routes it acts in its own workspace, as any key.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from batchd import exceptions
from batchd.api import auth, bodies, keyring, responses, services
from batchd.config import values
from batchd.store.base import Usage

MAX_BODY = 64 * 1024  # bytes of a key-creation body


def _managed(svc: services.Services) -> None:
    if not svc.settings.managed_keys:
        raise exceptions.InvalidRequest(
            "managed keys are off: set managed_keys (BATCHD_MANAGED_KEYS=true) on every batchd process"
        )


async def list_keys(request: Request) -> Response:
    await auth.admin(request)
    svc = services.of(request)
    _managed(svc)
    found = await svc.store.list_api_keys(request.query_params.get("workspace") or None)
    return responses.json({"data": [keyring.render(k) for k in found]}, request)


async def create_key(request: Request) -> Response:
    await auth.admin(request)
    svc = services.of(request)
    _managed(svc)
    body = _object(await bodies.read_body(request, MAX_BODY))
    workspace, name = body.get("workspace"), body.get("name", "")
    admin, expires_in = body.get("admin", False), body.get("expires_in")
    if not isinstance(workspace, str):
        raise exceptions.InvalidRequest("workspace: Field required (a string)")
    if not isinstance(name, str):
        raise exceptions.InvalidRequest("name: Input should be a valid string")
    if not isinstance(admin, bool):
        raise exceptions.InvalidRequest("admin: Input should be a valid boolean")
    now = time.time()
    expires_at = None
    if expires_in is not None:
        try:
            expires_at = now + values.parse_duration(expires_in)
        except ValueError as exc:
            raise exceptions.InvalidRequest(f"expires_in: {exc}") from None
    key, row = keyring.make(workspace=workspace, name=name, admin=admin, now=now, expires_at=expires_at)
    await svc.store.create_api_key(row)
    return responses.json({**keyring.render(row), "key": key}, request)


async def revoke_key(request: Request) -> Response:
    await auth.admin(request)
    svc = services.of(request)
    _managed(svc)
    key_id = request.path_params["key_id"]
    found = await svc.store.revoke_api_key(key_id, time.time())
    if found is None:
        raise exceptions.RouteNotFound(f"No API key with id {key_id!r}")
    svc.keyring.forget(key_id)
    return responses.json(keyring.render(found), request)


async def usage(request: Request) -> Response:
    await auth.admin(request)
    svc = services.of(request)
    workspace = request.query_params.get("workspace") or None
    found = await svc.store.usage(workspace)
    return responses.json({"data": [_usage(svc, u) for u in found]}, request)


def _usage(svc: services.Services, found: Usage) -> dict[str, Any]:
    quota = svc.settings.quota(found.workspace)
    return {
        **found._asdict(),
        "quota": {
            "queued_requests": quota.queued_requests,
            "batches": quota.batches,
            "stored_bytes": quota.stored_bytes,
        },
    }


def _object(body: bytes | bytearray) -> dict[str, Any]:
    try:
        parsed = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise exceptions.InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise exceptions.InvalidRequest("The request body must be a JSON object")
    return parsed
