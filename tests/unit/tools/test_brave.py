"""The brave provider against a loopback server speaking the Brave Search API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from batchd.tools.errors import ToolError
from batchd.tools.web_search import brave
from batchd.tools.web_search.base import SearchQuery
from tests.unit.tools.loopback import Loopback
from tests.unit.tools.search_wires import brave_pages, brave_result

KEY = "BSA-test-key"


@pytest.fixture
async def server() -> AsyncIterator[Loopback]:
    async with Loopback() as running:
        yield running


@pytest.fixture
async def provider(server: Loopback) -> AsyncIterator[brave.BraveProvider]:
    engine = brave.BraveProvider(
        api_key_env="TEST_BRAVE_KEY",
        api_url=f"{server.url}/res/v1/web/search",
        environ={"TEST_BRAVE_KEY": KEY},
    )
    yield engine
    await engine.aclose()


async def test_request_and_results(server: Loopback, provider: brave.BraveProvider) -> None:
    brave_pages(
        server,
        [
            brave_result(1, page_age="2025-04-30T12:00:00", age="April 30, 2025"),
            brave_result(2, age="2 days ago"),
            brave_result(3, extra_snippets=["More <strong>about</strong> 3.", 7, "And more."]),
            {"type": "search_result", "url": "javascript:alert(1)", "title": "x", "description": ""},
        ],
    )
    hits = await provider.search(SearchQuery("claude shannon", max_results=3))
    assert [h.url for h in hits] == [f"https://example.com/page{i}" for i in (1, 2, 3)]
    assert hits[0].title == "Page 1"
    assert hits[0].text == "The page 1 description"
    assert hits[0].page_age == "April 30, 2025"
    assert hits[1].page_age == "2 days ago"
    assert hits[2].page_age is None
    assert hits[2].text == "The page 3 description More about 3. And more."
    (request,) = server.requests
    assert request.path == "/res/v1/web/search"
    assert dict(request.query) == {
        "q": "claude shannon",
        "count": "3",
        "offset": "0",
        "text_decorations": "false",
    }
    assert request.headers["X-Subscription-Token"] == KEY
    assert request.headers["Accept"] == "application/json"
    assert not any(name.lower().startswith("x-loc-") for name in request.headers)


async def test_user_location_is_country_and_location_headers(
    server: Loopback, provider: brave.BraveProvider
) -> None:
    brave_pages(server, [brave_result(1)])
    location = {
        "type": "approximate",
        "city": "San Francisco",
        "region": "California",
        "country": "us",
        "timezone": "America/Los_Angeles",
    }
    await provider.search(SearchQuery("weather", user_location=location))
    (request,) = server.requests
    assert request.query["country"] == "US"
    assert request.headers["X-Loc-City"] == "San Francisco"
    assert request.headers["X-Loc-State-Name"] == "California"
    assert request.headers["X-Loc-Country"] == "us"
    assert request.headers["X-Loc-Timezone"] == "America/Los_Angeles"


async def test_a_country_that_is_not_two_letters_is_not_sent(
    server: Loopback, provider: brave.BraveProvider
) -> None:
    brave_pages(server, [brave_result(1)])
    await provider.search(SearchQuery("q", user_location={"type": "approximate", "country": "USA"}))
    assert "country" not in server.requests[0].query


async def test_no_more_results_stops_paging(server: Loopback, provider: brave.BraveProvider) -> None:
    brave_pages(server, [brave_result(1, "other.org")])
    assert await provider.search(SearchQuery("q", blocked_domains=("other.org",))) == []
    assert len(server.requests) == 1


async def test_no_web_section_is_no_results(server: Loopback, provider: brave.BraveProvider) -> None:
    brave_pages(server, [])
    assert await provider.search(SearchQuery("nothing")) == []


async def test_unauthorized_is_unavailable(server: Loopback, provider: brave.BraveProvider) -> None:
    async def unauthorized(request: web.Request) -> web.Response:
        error = {"type": "ErrorResponse", "error": {"code": "SUBSCRIPTION_TOKEN_INVALID", "status": 401}}
        return web.json_response(error, status=401)

    server.handle = unauthorized
    with pytest.raises(ToolError) as info:
        await provider.search(SearchQuery("q"))
    assert info.value.error_code == "unavailable"
    assert "HTTP 401" in info.value.message and "SUBSCRIPTION_TOKEN_INVALID" in info.value.message


async def test_without_a_key_nothing_is_sent(server: Loopback) -> None:
    engine = brave.BraveProvider(api_url=server.url, environ={})
    try:
        with pytest.raises(ToolError) as info:
            await engine.search(SearchQuery("q"))
        assert info.value.error_code == "unavailable"
        assert "BRAVE_API_KEY" in info.value.message
        assert "BRAVE_API_KEY" in (await engine.health() or "")
    finally:
        await engine.aclose()
    assert server.requests == []


async def test_health_with_a_key_costs_no_call(server: Loopback, provider: brave.BraveProvider) -> None:
    assert await provider.health() is None
    assert server.requests == []


def test_the_key_comes_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_BRAVE", " k1 ")
    assert brave.BraveProvider(api_key_env="MY_BRAVE")._key == "k1"
    assert brave.BraveProvider(api_key_env="NOT_SET_ANYWHERE")._key == ""
