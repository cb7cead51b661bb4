"""The JSON response every view answers with: orjson-encoded, tagged with the request id."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from batchd.api import errors


def json(data: Any, request: Request, status: int = 200) -> Response:
    return Response(
        orjson.dumps(data),
        status_code=status,
        media_type="application/json",
        headers={"request-id": errors.request_id(request)},
    )
