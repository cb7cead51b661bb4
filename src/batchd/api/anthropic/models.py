"""`GET /v1/models` and `GET /v1/models/{model_id}`: the routed models, in Anthropic's shape.

The list holds names a client can send: each exact `[[routes]]` name, in table order, with a
`display_name` saying where it goes; for a glob route to an `openai` or `anthropic` upstream
without `upstream_model`, the upstream's own models that the glob sends there
(`Router.listed_models`). A glob is not a model name, so other globs, and the simulator that
answers every name left over, are not listed; `GET /v1/models/{model_id}` answers for any name,
saying which route it takes.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from batchd import models
from batchd.api import auth, responses, services
from batchd.api.anthropic import paging, version
from batchd.config.routes import RouteConfig

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


def _target(route: RouteConfig) -> str:
    target = str(route.backend)
    if route.base_url:
        target += f" {route.base_url}"
    if route.upstream_model:
        target += f" as {route.upstream_model}"
    return target


async def _entries(svc: services.Services) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    router = svc.router
    for i, config in enumerate(svc.settings.routes):
        if router is None:  # an app without an engine: the table alone
            names = [] if config.is_glob else [config.model]
        elif not config.is_glob:  # unless a glob before it takes the name
            names = [config.model] if router.route(config.model) is router.routes[i] else []
        else:
            names = await router.listed_models(router.routes[i])
        for name in names:
            if name not in seen:
                seen.add(name)
                label = name if name == config.model else f"{name} (route {config.model})"
                out.append(_info(name, f"{label} → {_target(config)}"))
    return out


async def list_models(request: Request) -> Response:
    svc = services.of(request)
    await auth.caller(request)
    version.check(request, svc.settings)
    data = await _entries(svc)
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
    await auth.caller(request)
    version.check(request, settings)
    model_id = request.path_params["model_id"]
    route = next((r for r in settings.routes if r.matches(model_id)), None)
    if route is not None and not route.is_glob:
        return responses.json(_info(model_id, f"{model_id} → {_target(route)}"), request)
    target = f"{route.backend} (route {route.model})" if route else "simulated"
    return responses.json(_info(model_id, f"{model_id} → {target}"), request)
