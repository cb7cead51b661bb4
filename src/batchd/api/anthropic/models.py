"""`GET /v1/models` and `GET /v1/models/{model_id}`: the routed models, in Anthropic's shape.

Each `[[routes]]` entry is listed by its `model` (an exact name, or the glob itself) with a
`display_name` saying where it goes; the simulator fallback is listed last as `*`.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from batchd import models
from batchd.api import auth, responses, services
from batchd.api.anthropic import paging
from batchd.config import Settings

_STARTED = time.time()


def _info(model_id: str, display_name: str) -> dict[str, Any]:
    return {
        "type": "model",
        "id": model_id,
        "display_name": display_name,
        "created_at": models.rfc3339(_STARTED),
        "lifecycle": "active",
        "capabilities": None,
        "deprecated_at": None,
        "retires_at": None,
        "line": None,
        "max_input_tokens": None,
        "max_tokens": None,
    }


def _entries(settings: Settings) -> list[dict[str, Any]]:
    out = []
    for route in settings.routes:
        target = str(route.backend)
        if route.base_url:
            target += f" {route.base_url}"
        if route.upstream_model:
            target += f" as {route.upstream_model}"
        out.append(_info(route.model, f"{route.model} → {target}"))
    if not any(r.model == "*" for r in settings.routes):
        out.append(_info("*", "* → simulated"))
    return out


async def list_models(request: Request) -> Response:
    settings = services.of(request).settings
    auth.workspace(request, settings.api_keys)
    data = _entries(settings)
    query = request.query_params
    after, before = query.get("after_id"), query.get("before_id")
    ids = [m["id"] for m in data]
    if after in ids:
        data = data[ids.index(after) + 1 :]
    elif before in ids:
        data = data[: ids.index(before)]
    limit = paging.limit(query.get("limit"))
    page, has_more = data[:limit], len(data) > limit
    body = {
        "data": page,
        "has_more": has_more,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }
    return responses.json(body, request)


async def retrieve_model(request: Request) -> Response:
    settings = services.of(request).settings
    auth.workspace(request, settings.api_keys)
    model_id = request.path_params["model_id"]
    for entry in _entries(settings):
        if entry["id"] == model_id:
            return responses.json(entry, request)
    route = next((r for r in settings.routes if r.matches(model_id)), None)
    target = f"{route.backend} (route {route.model})" if route else "simulated"
    return responses.json(_info(model_id, f"{model_id} → {target}"), request)
