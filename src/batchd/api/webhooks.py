"""/v1/webhooks: a workspace's webhook endpoints and their deliveries (issue 17).

Every route is scoped to the caller's workspace (`auth.workspace`): another workspace's endpoint or
event is a 404. An endpoint's secret is in the answer to its creation only.

    POST   /v1/webhooks/endpoints                      {"url": …} -> the endpoint, with its secret
    GET    /v1/webhooks/endpoints                      -> {"data": [endpoints without secrets]}
    DELETE /v1/webhooks/endpoints/{endpoint_id}        -> {"id", "type": "webhook_endpoint_deleted"}
    GET    /v1/webhooks/deliveries?state=&event_id=&limit=   -> {"data": [deliveries]}
    POST   /v1/webhooks/events/{event_id}/redeliver    -> {"event_id", "deliveries": n}
"""

from __future__ import annotations

import functools
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchd import exceptions, models
from batchd.api import auth, bodies, responses, services
from batchd.api.anthropic import paging, schemas
from batchd.config import Settings
from batchd.config.webhooks import CONFIG_ID_PREFIX
from batchd.engine import webhooks
from batchd.store import Store
from batchd.store.base import DeliveryRecord, DeliveryState, WebhookEndpoint

PREFIX = "/v1/webhooks"
MAX_BODY = 16 * 1024  # bytes of an endpoint's creation body
MAX_URL_CHARS = 2048
DEFAULT_DELIVERIES = 100


def sender(settings: Settings, store: Store) -> webhooks.Sender:
    """The engine's webhook sender, rendering batches as this API does."""
    render = functools.partial(schemas.batch, public_url=settings.public_url, strict=settings.strict)
    return webhooks.Sender(settings, store, render)


async def _ctx(request: Request) -> tuple[services.Services, str]:
    return services.of(request), await auth.workspace(request)


def _endpoint(e: WebhookEndpoint, *, secret: bool = False) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": e.id,
        "type": "webhook_endpoint",
        "url": e.url,
        "created_at": models.rfc3339(e.created_at),
    }
    if secret:
        shown["secret"] = e.secret
    return shown


def _delivery(d: DeliveryRecord) -> dict[str, Any]:
    return {
        "event_id": d.event_id,
        "endpoint_id": d.endpoint_id,
        "url": d.url,
        "type": d.type,
        "state": d.state,
        "attempts": d.attempts,
        "next_attempt_at": models.rfc3339(d.next_attempt_at) if d.state == DeliveryState.PENDING else None,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "created_at": models.rfc3339(d.created_at),
        "updated_at": models.rfc3339(d.updated_at),
    }


async def create_endpoint(request: Request) -> Response:
    svc, workspace = await _ctx(request)
    body = await bodies.read_body(request, MAX_BODY)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise exceptions.InvalidRequest("The body must be a JSON object") from None
    url = data.get("url") if isinstance(data, dict) else None
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise exceptions.InvalidRequest(
            f"url: Field required (a string of at most {MAX_URL_CHARS} characters)"
        )
    try:
        webhooks.check_url(url, webhooks.policy_of(svc.settings))
    except ValueError as exc:
        raise exceptions.InvalidRequest(f"url: {exc}") from None
    endpoint = WebhookEndpoint(
        id="whep_" + models.new_request_id().removeprefix("req_"),
        workspace=workspace,
        url=url,
        secret=webhooks.new_secret(),
        created_at=time.time(),
    )
    await svc.store.create_webhook_endpoint(endpoint)
    return responses.json(_endpoint(endpoint, secret=True), request)


async def list_endpoints(request: Request) -> Response:
    svc, workspace = await _ctx(request)
    found = await svc.store.list_webhook_endpoints(workspace)
    return responses.json({"data": [_endpoint(e) for e in found], "has_more": False}, request)


async def delete_endpoint(request: Request) -> Response:
    svc, workspace = await _ctx(request)
    endpoint_id = request.path_params["endpoint_id"]
    if endpoint_id.startswith(CONFIG_ID_PREFIX):
        raise exceptions.InvalidRequest(
            f"webhook endpoint {endpoint_id} is in the configuration (the webhooks setting): remove it there"
        )
    await svc.store.delete_webhook_endpoint(workspace, endpoint_id)
    return responses.json({"id": endpoint_id, "type": "webhook_endpoint_deleted"}, request)


async def list_deliveries(request: Request) -> Response:
    svc, workspace = await _ctx(request)
    query = request.query_params
    state = query.get("state") or None
    if state is not None and state not in set(DeliveryState):
        choices = ", ".join(DeliveryState)
        raise exceptions.InvalidRequest(f"state: Input should be one of {choices}, got {state!r}")
    limit = paging.limit(query.get("limit") or str(DEFAULT_DELIVERIES))
    found = await svc.store.list_webhook_deliveries(
        workspace,
        state=None if state is None else DeliveryState(state),
        event_id=query.get("event_id") or None,
        limit=limit,
    )
    return responses.json({"data": [_delivery(d) for d in found]}, request)


async def redeliver(request: Request) -> Response:
    svc, workspace = await _ctx(request)
    event_id = request.path_params["event_id"]
    n = await svc.store.redeliver_webhook_event(workspace, event_id, now=time.time())
    return responses.json({"event_id": event_id, "deliveries": n}, request)


def routes() -> list[Route]:
    return [
        Route(PREFIX + "/endpoints", create_endpoint, methods=["POST"]),
        Route(PREFIX + "/endpoints", list_endpoints, methods=["GET"]),
        Route(PREFIX + "/endpoints/{endpoint_id}", delete_endpoint, methods=["DELETE"]),
        Route(PREFIX + "/deliveries", list_deliveries, methods=["GET"]),
        Route(PREFIX + "/events/{event_id}/redeliver", redeliver, methods=["POST"]),
    ]
