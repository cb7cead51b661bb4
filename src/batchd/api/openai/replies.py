"""What every view of the OpenAI wire starts and ends with: the caller's workspace, and a JSON answer
carrying `x-request-id` (the openai SDK's `_request_id`) beside `request-id`."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from batchd.api import auth, errors, services


async def context(request: Request) -> tuple[services.Services, str]:
    """The services and the caller's workspace (raises AuthenticationFailed without a good key)."""
    return services.of(request), await auth.workspace(request)


def headers(request: Request) -> dict[str, str]:
    rid = errors.request_id(request)
    return {"request-id": rid, "x-request-id": rid}


def json(data: Any, request: Request, status: int = 200) -> Response:
    return Response(
        orjson.dumps(data), status_code=status, media_type="application/json", headers=headers(request)
    )
