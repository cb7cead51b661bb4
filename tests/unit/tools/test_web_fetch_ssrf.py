"""Web fetch's SSRF policy: refused addresses, checked after resolution and on every redirect.

Every test here runs under `loopback_only`, which refuses (and records) any connection to an
address outside 127.0.0.0/8 and ::1 at the event loop's socket level: if the fetcher's own checks
failed, no packet would still leave this machine, and the test would fail on the record.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import abc as aiohttp_abc

from batchd import config, exceptions
from batchd.tools.errors import ToolError
from batchd.tools.web_fetch import Fetcher, fetcher, ssrf
from tests.unit.tools import web_pages
from tests.unit.tools.loopback import Loopback


@pytest.fixture(autouse=True)
async def loopback_only(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[Any]]:
    loop = asyncio.get_running_loop()
    real = loop.sock_connect
    attempts: list[Any] = []

    async def guarded(sock: socket.socket, address: Any) -> None:
        if not ipaddress.ip_address(address[0]).is_loopback:
            attempts.append(address)
            raise ConnectionRefusedError(f"test guard: no connection to {address[0]}")
        await real(sock, address)

    monkeypatch.setattr(loop, "sock_connect", guarded)
    yield attempts
    assert attempts == [], "the fetcher tried to connect outside loopback"


@pytest.fixture
async def server() -> AsyncIterator[Loopback]:
    async with web_pages.site() as running:
        yield running


class StubResolver(aiohttp_abc.AbstractResolver):
    """Answers names from a table, as a DNS server (or an attacker's) would."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp_abc.ResolveResult]:
        self.asked.append(host)
        if host not in self.table:
            raise OSError(f"{host}: no such name")
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in self.table[host]
        ]

    async def close(self) -> None:
        pass


async def failure(engine: Fetcher, url: str) -> ToolError:
    try:
        with pytest.raises(ToolError) as info:
            await engine.fetch(url)
    finally:
        await engine.aclose()
    return info.value


async def fetched(engine: Fetcher, url: str) -> str:
    try:
        return (await engine.fetch(url)).text
    finally:
        await engine.aclose()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.255.0.9", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1",
        "192.0.2.1", "198.18.0.1", "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "fec0::1",
        "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
        "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2002:a00:1::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    ],
)  # fmt: skip
def test_unsafe_addresses(address: str) -> None:
    assert ssrf.unsafe(ipaddress.ip_address(address))
    assert not ssrf.Policy().allows("example.com", ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "2001:4860:4860::8888",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2606:4700::1111",
    ],
)
def test_global_addresses(address: str) -> None:
    assert not ssrf.unsafe(ipaddress.ip_address(address))


def test_allowed_hosts_by_name_and_by_range() -> None:
    policy = ssrf.Policy(["LocalHost", "10.1.0.0/16", "[::1]", " ", "fd00::/8"])
    loopback = ipaddress.ip_address("127.0.0.1")
    assert policy.allows("localhost", loopback)
    assert policy.allows("localhost.", loopback)
    assert not policy.allows("other.test", loopback)
    assert not policy.allows("sub.localhost", loopback)  # a name covers only itself
    assert policy.allows("anything", ipaddress.ip_address("10.1.200.3"))
    assert not policy.allows("anything", ipaddress.ip_address("10.2.0.1"))
    assert policy.allows("x", ipaddress.ip_address("::1"))
    assert policy.allows("x", ipaddress.ip_address("::ffff:10.1.0.1"))  # mapped: judged as IPv4
    assert policy.allows("x", ipaddress.ip_address("fd12::1"))
    assert not policy.allows("x", ipaddress.ip_address("169.254.169.254"))
    with pytest.raises(ValueError, match="neither a host name nor an address range"):
        ssrf.Policy(["http://localhost"])


async def test_the_fixture_is_refused_by_default(server: Loopback) -> None:
    error = await failure(Fetcher(), server.url + "/page.html")
    assert error.error_code == "url_not_allowed"
    assert "loopback" in error.message
    error = await failure(Fetcher(), f"http://127.1:{server.port}/page.html")
    assert error.error_code == "url_not_allowed" and "loopback" in error.message
    assert server.requests == []


async def test_a_name_resolving_to_loopback_is_refused_by_default(server: Loopback) -> None:
    error = await failure(Fetcher(), f"http://localhost:{server.port}/page.html")
    assert error.error_code == "url_not_allowed"
    assert "localhost resolves to loopback address" in error.message
    assert server.requests == []


@pytest.mark.parametrize(
    ("allowed", "host"),
    [
        (("127.0.0.1",), "127.0.0.1"),
        (("127.0.0.0/8",), "localhost"),
        (("localhost",), "localhost"),
        (("::1", "127.0.0.1"), "localhost"),
    ],
)
async def test_allowed_hosts_let_the_fixture_through(
    server: Loopback, allowed: tuple[str, ...], host: str
) -> None:
    text = await fetched(Fetcher(allowed_hosts=allowed), f"http://{host}:{server.port}/page.html")
    assert web_pages.ARTICLE in text


async def test_a_name_allowance_does_not_cover_the_address_literal(server: Loopback) -> None:
    error = await failure(Fetcher(allowed_hosts=("localhost",)), f"{server.url}/page.html")
    assert error.error_code == "url_not_allowed"


@pytest.mark.parametrize(
    "target",
    [
        "http://10.0.0.1/",
        "http://172.16.0.1:8080/admin",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00::1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://127.0.0.1:{port}/page.html",
        "http://[::1]:{port}/page.html",
        "http://[::ffff:127.0.0.1]:{port}/page.html",
        "http://127.0.0.1.:{port}/page.html",
        "http://127.1:{port}/page.html",
        "http://2130706433:{port}/page.html",
        "http://0x7f.0.0.1:{port}/page.html",
        "http://0177.0.0.1:{port}/page.html",
    ],
)
async def test_a_redirect_to_a_refused_address_is_not_followed(server: Loopback, target: str) -> None:
    # The fixture is let through by name only, so every address literal is judged on its own.
    to = urllib.parse.quote(target.format(port=server.port), safe="")
    start = f"http://localhost:{server.port}/redirect?to={to}"
    error = await failure(Fetcher(allowed_hosts=("localhost",)), start)
    assert error.error_code == "url_not_allowed"
    assert [r.path for r in server.requests] == ["/redirect"]


async def test_a_redirect_to_a_name_resolving_to_a_refused_address(server: Loopback) -> None:
    resolver = StubResolver({"public.test": ["127.0.0.1"], "internal.test": ["10.9.8.7", "fd00::7"]})
    start = f"http://public.test:{server.port}/redirect?to=http://internal.test/"
    error = await failure(Fetcher(allowed_hosts=("public.test",), resolver=resolver), start)
    assert error.error_code == "url_not_allowed"
    assert "internal.test resolves to private address 10.9.8.7, private address fd00::7" in error.message
    assert resolver.asked == ["public.test", "internal.test"]


async def test_the_connection_goes_to_the_address_that_was_checked(server: Loopback) -> None:
    # `rebind.test` exists only in the stub: the fetch reaches the fixture only if aiohttp connects
    # to the address the policy saw, without a lookup of its own that could answer differently.
    resolver = StubResolver({"rebind.test": ["127.0.0.1"]})
    text = await fetched(
        Fetcher(allowed_hosts=("127.0.0.0/8",), resolver=resolver),
        f"http://rebind.test:{server.port}/page.html",
    )
    assert web_pages.ARTICLE in text
    assert server.requests[0].headers["Host"] == f"rebind.test:{server.port}"
    error = await failure(Fetcher(resolver=resolver), f"http://rebind.test:{server.port}/page.html")
    assert error.error_code == "url_not_allowed"


async def test_the_resolver_keeps_only_allowed_addresses() -> None:
    inner = StubResolver({"mixed.test": ["93.184.216.34", "127.0.0.1", "2606:4700::1111", "::1"]})
    resolver = ssrf.SafeResolver(ssrf.Policy(), inner)
    answers = await resolver.resolve("mixed.test", 443)
    assert [a["host"] for a in answers] == ["93.184.216.34", "2606:4700::1111"]
    with pytest.raises(OSError):
        await resolver.resolve("unknown.test", 443)  # a lookup failure stays one
    assert await ssrf.SafeResolver(ssrf.Policy(), StubResolver({"none.test": []})).resolve("none.test") == []


def test_from_settings() -> None:
    default = Fetcher.from_settings(config.Settings())
    assert default.policy.allowed_names == frozenset() and default.policy.allowed_networks == ()
    assert (default.max_bytes, default.timeout) == (fetcher.DEFAULT_MAX_BYTES, fetcher.DEFAULT_TIMEOUT)
    settings = config.Settings(
        web_fetch_allowed_hosts=("Fixture.Local", "127.0.0.0/8"),
        web_fetch_max_bytes=1000,
        web_fetch_timeout=2.5,
    )
    made = Fetcher.from_settings(settings)
    assert made.policy.allowed_names == {"fixture.local"}
    assert made.policy.allowed_networks == (ipaddress.ip_network("127.0.0.0/8"),)
    assert (made.max_bytes, made.timeout) == (1000, 2.5)
    with pytest.raises(exceptions.ConfigError, match="'not a host!'"):
        Fetcher.from_settings(config.Settings(web_fetch_allowed_hosts=("not a host!",)))
