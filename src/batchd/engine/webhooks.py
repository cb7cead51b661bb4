"""Webhook delivery (issue 17): the engine's loop that sends the outbox's events, signed.

The store writes a batch's event and one delivery per endpoint in the transaction that ends the
batch; this loop claims due deliveries (in a fleet each is taken by one process, SKIP LOCKED),
POSTs them and records the outcome: delivered (2xx), pending again after an exponential backoff
with jitter, or dead once retried for `webhook_give_up_after` (and at once when the address policy
refuses the endpoint). A process that dies mid-attempt leaves the claim to lapse: the delivery is
sent again, with the same event id, so delivery is at least once and receivers deduplicate by id.

Messages follow the Standard Webhooks convention: headers `webhook-id` (the event id, stable
across retries and redeliveries), `webhook-timestamp` (seconds), `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed by the endpoint's `whsec_` secret).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from batchd import __version__, exceptions, models
from batchd.backends import http
from batchd.config import Settings
from batchd.config.webhooks import CONFIG_ID_PREFIX
from batchd.engine import retry
from batchd.store import Store
from batchd.store.base import DeliveryState, WebhookDelivery, WebhookEndpoint
from batchd.tools.web_fetch import ssrf

logger = logging.getLogger("batchd.webhooks")

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # random bytes of a new endpoint secret
CLAIM_LIMIT = 32  # deliveries claimed (and sent concurrently) per round
USER_AGENT = f"batchd-webhooks/{__version__}"
ERROR_CHARS = 300  # the longest error kept for a delivery
Render = Callable[[models.Batch], dict[str, Any]]  # the batch object as the API returns it


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value of a message."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def payload(delivery: WebhookDelivery, render: Render) -> bytes:
    return orjson.dumps(
        {
            "type": delivery.type,
            "timestamp": models.rfc3339(delivery.created_at),
            "data": render(delivery.batch),
        }
    )


def check_url(url: str, policy: ssrf.Policy) -> None:
    """Refuses (ValueError) a URL that is not http(s) with a host, or whose host is an address the
    policy refuses; a name is judged when it is resolved, at each delivery."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    try:
        policy.check_literal(parts.hostname)
    except ssrf.UnsafeAddress as exc:
        raise ValueError(f"{exc}: not allowed unless webhook_allowed_hosts names it") from exc


def policy_of(settings: Settings) -> ssrf.Policy:
    try:
        return ssrf.Policy(settings.webhook_allowed_hosts)
    except ValueError as exc:
        raise exceptions.ConfigError(str(exc).replace("web_fetch", "webhook")) from exc


def check(settings: Settings) -> list[WebhookEndpoint]:
    """The configured endpoints (`webhooks` setting), checked at start: ConfigError for an unset
    or malformed secret, or a URL the address policy refuses."""
    policy, found = policy_of(settings), []
    for config in settings.webhooks:
        try:
            check_url(config.url, policy)
        except ValueError as exc:
            raise exceptions.ConfigError(f"webhooks ({config.url}): {exc}") from exc
        found.append(WebhookEndpoint(config.id, config.workspace, config.url, config.secret(), 0.0))
    return found


class Sender:
    """Sends due deliveries until cancelled; `run` is one of the engine's supervised loops."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        render: Render,
        *,
        resolver: aiohttp.abc.AbstractResolver | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.render = render
        self.policy = policy_of(settings)
        self._resolver = resolver
        # A claim outlives an attempt: a delivery is claimed again only if its sender died.
        self.lease = 2 * settings.webhook_timeout + 1.0

    async def sync_config(self) -> None:
        """Makes the store's configured endpoints those of the `webhooks` setting (at start)."""
        now = time.time()
        configured = [e._replace(created_at=now) for e in check(self.settings)]
        await self.store.sync_config_webhook_endpoints(CONFIG_ID_PREFIX, configured)

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(
            resolver=ssrf.SafeResolver(self.policy, self._resolver), ssl=http.ssl_context()
        )
        timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers={"user-agent": USER_AGENT}, trust_env=False
        ) as session:
            while True:
                try:
                    due = await self.store.claim_webhook_deliveries(
                        CLAIM_LIMIT, now=time.time(), lease=self.lease
                    )
                    await asyncio.gather(*(self._deliver(session, d) for d in due))
                except exceptions.StoreError as exc:
                    logger.warning("webhook delivery: the store failed: %s", exc)
                    due = []
                if len(due) < CLAIM_LIMIT:
                    await asyncio.sleep(self.settings.webhook_poll_interval)

    async def _deliver(self, session: aiohttp.ClientSession, d: WebhookDelivery) -> None:
        body = payload(d, self.render)
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": d.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(d.secret, d.event_id, timestamp, body),
        }
        status: int | None = None
        refused = False
        try:
            check_url(d.url, self.policy)
            async with session.post(d.url, data=body, headers=headers, allow_redirects=False) as response:
                status = response.status
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except ValueError as exc:
            refused, error = True, f"refused: {exc}"
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, ssrf.UnsafeAddress)
            error = f"refused: {exc.os_error}" if refused else f"cannot connect: {exc.os_error}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        await self._record(d, status, error, refused)

    async def _record(self, d: WebhookDelivery, status: int | None, error: str | None, refused: bool) -> None:
        s, now = self.settings, time.time()
        if error is None:
            state, next_at = DeliveryState.DELIVERED, now
        elif refused or now - d.started_at >= s.webhook_give_up_after:
            state, next_at = DeliveryState.DEAD, now
            logger.warning(
                "webhook %s to %s is dead after %d attempts: %s", d.event_id, d.url, d.attempt, error
            )
        else:
            state = DeliveryState.PENDING
            next_at = now + retry.backoff(d.attempt, base=s.webhook_retry_base, ceiling=s.webhook_retry_max)
            logger.info(
                "webhook %s to %s: attempt %d failed (%s); next in %.1fs",
                d.event_id,
                d.url,
                d.attempt,
                error,
                next_at - now,
            )
        await self.store.record_webhook_attempt(
            d.event_id,
            d.endpoint_id,
            state=state,
            next_attempt_at=next_at,
            status=status,
            error=None if error is None else error[:ERROR_CHARS],
            now=now,
        )
