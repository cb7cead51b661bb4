"""Which addresses web fetch may connect to: the SSRF policy, checked on the resolved address.

By default only global unicast addresses are reachable. Refused: loopback (127.0.0.0/8, ::1),
private (RFC 1918, fc00::/7), link-local (169.254.0.0/16 — the cloud metadata service at
169.254.169.254 among them — and fe80::/10), shared/CGNAT (100.64.0.0/10), multicast, unspecified
(0.0.0.0, ::), reserved and documentation ranges, and the deprecated site-local fec0::/10. An IPv6
address that carries an IPv4 one (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16,
Teredo) is judged by the IPv4 address it carries as well.

`allowed_hosts` (the `web_fetch.allowed_hosts` setting) names the exceptions: a host name
(`intranet.example`, `localhost`), reachable at whatever it resolves to, or an address or CIDR
range (`127.0.0.1`, `10.0.0.0/8`, `::1`), reachable under any name.

The check happens where the connection is made: `SafeResolver` resolves a name once, drops the
addresses the policy refuses and hands aiohttp only the rest, so aiohttp connects to an address
that was checked; a second lookup that answers differently (DNS rebinding) never happens. aiohttp
does not resolve an IP literal, so the fetcher checks those itself (`Policy.check_literal`) before
every request, redirects included.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from aiohttp import abc as aiohttp_abc
from aiohttp import resolver as aiohttp_resolver

from batchd.tools import domains

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")


class UnsafeAddress(OSError):
    """Every address of the host is one the SSRF policy refuses."""


def unsafe(address: Address) -> bool:
    """Whether `address` is refused by default (not a global unicast address)."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return unsafe(mapped)  # ::ffff:a.b.c.d is a.b.c.d to the kernel
        if any(unsafe(inner) for inner in _embedded_ipv4(address)):
            return True
        if address in _NAT64:
            return False  # reaches the IPv4 address it carries, just checked
        if address in _SITE_LOCAL:
            return True
    return (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    inner = []
    if address in _NAT64:
        inner.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        inner.append(address.sixtofour)
    if address.teredo is not None:
        inner.extend(address.teredo)
    return inner


class Policy:
    """The SSRF policy: refuse unsafe addresses unless `allowed_hosts` names the host or range."""

    def __init__(self, allowed_hosts: Iterable[str] = ()) -> None:
        names: set[str] = set()
        networks: list[Network] = []
        for entry in allowed_hosts:
            entry = entry.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                name = domains.host_name(entry)
                if name is None:
                    raise ValueError(
                        f"web_fetch allowed_hosts: {entry!r} is neither a host name nor an address range"
                    ) from None
                names.add(name)
        self.allowed_names = frozenset(names)
        self.allowed_networks = tuple(networks)  # "[::1]" is taken as written in a URL

    def allows(self, host: str, address: Address) -> bool:
        """Whether a connection to `address`, reached as `host`, is allowed."""
        if not unsafe(address):
            return True
        if domains.normal_host(host) in self.allowed_names:
            return True
        candidates: list[Address] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(a in net for a in candidates for net in self.allowed_networks if a.version == net.version)

    def check_literal(self, host: str) -> None:
        """Raise UnsafeAddress when `host` is an IP literal the policy refuses; names pass."""
        # "127.0.0.1." is the same address to the resolver; "[::1]" is how URLs write IPv6.
        bare = host.strip("[]").split("%")[0].removesuffix(".")
        try:
            address: Address = ipaddress.ip_address(bare)
        except ValueError:
            try:
                # The legacy forms the C library still reads as IPv4: 127.1, 0x7f.1, 2130706433.
                address = ipaddress.IPv4Address(socket.inet_aton(bare))
            except OSError:
                return  # a name: SafeResolver checks what it resolves to
        if not self.allows(host, address):
            raise UnsafeAddress(f"{host} is a {_kind(address)} address")


class SafeResolver(aiohttp_abc.AbstractResolver):
    """An aiohttp resolver that answers only the addresses `policy` allows, else UnsafeAddress."""

    def __init__(self, policy: Policy, inner: aiohttp_abc.AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner or aiohttp_resolver.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp_abc.ResolveResult]:
        safe, refused = [], []
        for result in await self.inner.resolve(host, port, family):
            address = ipaddress.ip_address(result["host"].split("%")[0])  # fe80::1%eth0: the scope
            if self.policy.allows(host, address):
                safe.append(result)
            else:
                refused.append(address)
        if refused and not safe:
            raise UnsafeAddress(f"{host} resolves to {', '.join(f'{_kind(a)} address {a}' for a in refused)}")
        return safe

    async def close(self) -> None:
        await self.inner.close()


def _kind(address: Address) -> str:
    """What kind of refused address this is, for the message the model and the log see."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _kind(address.ipv4_mapped)
    for kind, test in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if test:
            return kind
    if isinstance(address, ipaddress.IPv4Address) and address in ipaddress.IPv4Network("100.64.0.0/10"):
        return "shared (CGNAT)"
    return "non-global"
