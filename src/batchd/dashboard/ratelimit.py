"""Login attempts per client address: a token bucket each, refilled over a minute.

The buckets live in the process: on a fleet, each `batchd serve` counts its own attempts, so a
client spread over N processes gets N times the rate (still minutes per thousand guesses, not a
second). Behind a proxy every client has the proxy's address, unless the ASGI server is told to
trust its forwarded-for header.
"""

from __future__ import annotations

import ipaddress
import math

MAX_CLIENTS = 10_000  # buckets kept; past that the least recently used are forgotten
PERIOD = 60.0  # seconds in which a bucket refills whole
IPV6_PREFIX = 64  # one IPv6 host usually owns a whole /64: its addresses share a bucket


def client_key(address: str | None) -> str:
    """The bucket of a client address: itself, or its /64 for IPv6."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else ip)


class Limiter:
    """Token buckets by client: `rate` attempts at once, then `rate` a minute."""

    def __init__(self, max_clients: int = MAX_CLIENTS) -> None:
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at); oldest use first

    def take(self, client: str, *, rate: int, now: float) -> float:
        """Takes one attempt from `client`'s bucket: 0.0 if it had one, else the seconds until it will.

        `now` is a monotonic clock's reading.
        """
        tokens, at = self._buckets.pop(client, (float(rate), now))
        tokens = min(float(rate), tokens + max(0.0, now - at) * rate / PERIOD)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) * PERIOD / rate
        self._buckets[client] = (tokens, now)  # to the end: the most recently used
        while len(self._buckets) > self.max_clients:
            del self._buckets[next(iter(self._buckets))]
        return wait


def retry_after(wait: float) -> str:
    """A `retry-after` header value: whole seconds, at least one."""
    return str(max(1, math.ceil(wait)))
