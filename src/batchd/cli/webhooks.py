"""`batchd webhooks`: a workspace's webhook endpoints and deliveries, over batchd's /v1/webhooks API.

Talks to the server as the other client commands do (the `anthropic` SDK's client, so the same
options, errors and exit codes); the key's workspace is the one managed.
"""

from __future__ import annotations

from typing import Any, cast

import click

from batchd.cli.client import _client, _client_options, _dump, _handle_errors

PREFIX = "/v1/webhooks"
STATES = ("pending", "delivered", "dead")


def _call(base_url: str, api_key: str | None, method: str, path: str, **options: Any) -> dict[str, Any]:
    client = _client(base_url, api_key)
    if method == "get":
        found = client.get(PREFIX + path, cast_to=object, **options)
    elif method == "post":
        found = client.post(PREFIX + path, cast_to=object, **options)
    else:
        found = client.delete(PREFIX + path, cast_to=object, **options)
    return cast("dict[str, Any]", found)


@click.group()
def webhooks() -> None:
    """Webhook endpoints of your workspace: a signed POST when a batch ends, is canceled or expires."""


@webhooks.command()
@click.argument("url")
@_client_options
@_handle_errors
def add(url: str, base_url: str, api_key: str | None, as_json: bool) -> None:
    """Add an endpoint; prints its signing secret, shown this once."""
    endpoint = _call(base_url, api_key, "post", "/endpoints", body={"url": url})
    if as_json:
        _dump(endpoint)
        return
    click.echo(f"{endpoint['id']}  {endpoint['url']}")
    click.echo(f"secret: {endpoint['secret']}")
    click.echo(
        "Keep the secret now: it is not shown again. Receivers verify each delivery with it.", err=True
    )


@webhooks.command(name="list")
@_client_options
@_handle_errors
def list_endpoints(base_url: str, api_key: str | None, as_json: bool) -> None:
    """List the endpoints (without their secrets)."""
    found = _call(base_url, api_key, "get", "/endpoints")
    if as_json:
        _dump(found)
        return
    for e in found["data"]:
        click.echo(f"{e['id']}  {e['created_at']}  {e['url']}")


@webhooks.command()
@click.argument("endpoint_id")
@_client_options
@_handle_errors
def remove(endpoint_id: str, base_url: str, api_key: str | None, as_json: bool) -> None:
    """Remove an endpoint; its pending deliveries are dropped."""
    deleted = _call(base_url, api_key, "delete", f"/endpoints/{endpoint_id}")
    if as_json:
        _dump(deleted)
    else:
        click.echo(f"removed {deleted['id']}")


@webhooks.command()
@click.option("--state", type=click.Choice(STATES), default=None, help="Only deliveries in this state.")
@click.option("--event", "event_id", default=None, help="Only the deliveries of this event id.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@_client_options
@_handle_errors
def deliveries(
    state: str | None, event_id: str | None, limit: int, base_url: str, api_key: str | None, as_json: bool
) -> None:
    """List deliveries, newest event first: pending (with the next attempt), delivered, dead."""
    query: dict[str, object] = {"limit": limit}
    if state:
        query["state"] = state
    if event_id:
        query["event_id"] = event_id
    found = _call(base_url, api_key, "get", "/deliveries", options={"params": query})
    if as_json:
        _dump(found)
        return
    for d in found["data"]:
        last = d["last_error"] or (f"HTTP {d['last_status']}" if d["last_status"] else "")
        when = f" next {d['next_attempt_at']}" if d["next_attempt_at"] else ""
        click.echo(
            f"{d['event_id']}  {d['type']}  {d['state']}  attempts={d['attempts']}{when}  "
            f"{d['url'] or d['endpoint_id']}  {last}".rstrip()
        )


@webhooks.command()
@click.argument("event_id")
@_client_options
@_handle_errors
def redeliver(event_id: str, base_url: str, api_key: str | None, as_json: bool) -> None:
    """Send an event again (to every endpoint it went to), whatever its deliveries' state."""
    done = _call(base_url, api_key, "post", f"/events/{event_id}/redeliver")
    if as_json:
        _dump(done)
    else:
        click.echo(f"{event_id}: {done['deliveries']} delivery(ies) queued")
