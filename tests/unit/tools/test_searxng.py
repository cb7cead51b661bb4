"""The searxng provider against a loopback server speaking SearXNG's JSON API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from batchd import exceptions
from batchd.tools.errors import ToolError
from batchd.tools.web_search import remote, searxng
from batchd.tools.web_search.base import SearchQuery
from tests.unit.tools.loopback import Loopback
from tests.unit.tools.search_wires import searxng_pages, searxng_result


@pytest.fixture
async def server() -> AsyncIterator[Loopback]:
    async with Loopback() as running:
        yield running


@pytest.fixture
async def provider(server: Loopback) -> AsyncIterator[searxng.SearxngProvider]:
    engine = searxng.SearxngProvider(server.url + "/", timeout=2)
    yield engine
    await engine.aclose()


async def test_query_and_results(server: Loopback, provider: searxng.SearxngProvider) -> None:
    searxng_pages(
        server,
        [
            searxng_result(1, publishedDate="2025-04-30T00:00:00"),
            searxng_result(2, publishedDate=None),
            searxng_result(3),
            {"url": "ftp://example.com/x", "title": "not http"},
            searxng_result(1),  # merged twice by the engines: once here
        ],
    )
    hits = await provider.search(SearchQuery("  claude shannon  ", max_results=3))
    assert [h.url for h in hits] == [f"https://example.com/page{i}" for i in (1, 2, 3)]
    assert hits[0].title == "Page 1"
    assert hits[0].text == "About page 1 & more"
    assert hits[0].page_age == "April 30, 2025"
    assert hits[1].page_age is None
    (request,) = server.requests
    assert request.path == "/search"
    assert dict(request.query) == {"q": "claude shannon", "format": "json", "pageno": "1"}


async def test_max_results_cuts_a_page(server: Loopback, provider: searxng.SearxngProvider) -> None:
    searxng_pages(server, [searxng_result(i) for i in range(20)])
    hits = await provider.search(SearchQuery("q", max_results=3))
    assert [h.url for h in hits] == [f"https://example.com/page{i}" for i in range(3)]
    assert len(server.requests) == 1


async def test_more_pages_fill_max_results(server: Loopback, provider: searxng.SearxngProvider) -> None:
    searxng_pages(server, [searxng_result(i) for i in range(4)], [searxng_result(i) for i in range(4, 8)])
    hits = await provider.search(SearchQuery("q", max_results=6))
    assert len(hits) == 6
    assert [r.query["pageno"] for r in server.requests] == ["1", "2"]


@pytest.mark.parametrize(
    ("country", "language"),
    [("DE", "de-DE"), ("ch", "de-CH"), ("TW", "zh-TW"), ("US", "en-US"), ("XX", None), ("USA", None)],
)
async def test_language_from_user_location(
    server: Loopback, provider: searxng.SearxngProvider, country: str, language: str | None
) -> None:
    searxng_pages(server, [searxng_result(1)])
    location = {"type": "approximate", "country": country, "city": "Somewhere"}
    await provider.search(SearchQuery("q", user_location=location))
    assert server.requests[0].query.get("language") == language


async def test_no_location_sends_no_language(server: Loopback, provider: searxng.SearxngProvider) -> None:
    searxng_pages(server, [searxng_result(1)])
    await provider.search(SearchQuery("q", user_location={"type": "approximate", "city": "Paris"}))
    await provider.search(SearchQuery("q"))
    assert all("language" not in r.query for r in server.requests)


async def test_pages_are_bounded_when_nothing_passes(
    server: Loopback, provider: searxng.SearxngProvider
) -> None:
    searxng_pages(server, *[[searxng_result(i, "other.org")] for i in range(10)])
    hits = await provider.search(SearchQuery("q", allowed_domains=("example.com",)))
    assert hits == []
    assert len(server.requests) == remote.MAX_PAGES


async def test_blocked_domains_and_paths(server: Loopback, provider: searxng.SearxngProvider) -> None:
    searxng_pages(
        server,
        [
            {"url": "https://example.com/blog/a", "title": "a"},
            {"url": "https://example.com/docs/b", "title": "b"},
            {"url": "https://spam.test/c", "title": "c"},
        ],
    )
    hits = await provider.search(SearchQuery("q", blocked_domains=("example.com/blog", "spam.test")))
    assert [h.url for h in hits] == ["https://example.com/docs/b"]


async def test_no_results_is_an_empty_list(server: Loopback, provider: searxng.SearxngProvider) -> None:
    searxng_pages(server, [], unresponsive_engines=[])
    assert await provider.search(SearchQuery("nothing matches this")) == []


async def test_every_engine_failing_is_unavailable(
    server: Loopback, provider: searxng.SearxngProvider
) -> None:
    searxng_pages(server, [], unresponsive_engines=[["google", "CAPTCHA"], ["bing", "timeout"]])
    with pytest.raises(ToolError) as info:
        await provider.search(SearchQuery("q"))
    assert info.value.error_code == "unavailable"
    assert "CAPTCHA" in info.value.message


async def test_json_format_disabled_is_unavailable(
    server: Loopback, provider: searxng.SearxngProvider
) -> None:
    async def forbidden(request: web.Request) -> web.Response:
        return web.Response(status=403, text="Forbidden")

    server.handle = forbidden
    with pytest.raises(ToolError) as info:
        await provider.search(SearchQuery("q"))
    assert info.value.error_code == "unavailable"
    assert "HTTP 403" in info.value.message


async def test_health(server: Loopback, provider: searxng.SearxngProvider) -> None:
    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="OK") if request.path == "/healthz" else web.Response(status=500)

    server.handle = healthz
    assert await provider.health() is None
    server.handle = lambda request: _status(503)
    assert "HTTP 503" in (await provider.health() or "")
    await server.stop()
    assert "could not be reached" in (await provider.health() or "")


async def _status(status: int) -> web.Response:
    return web.Response(status=status)


@pytest.mark.parametrize("url", ["", "localhost:8888", "ftp://searx.example", "http://"])
def test_a_bad_instance_url_is_a_config_error(url: str) -> None:
    with pytest.raises(exceptions.ConfigError, match="searxng_url"):
        searxng.SearxngProvider(url)
