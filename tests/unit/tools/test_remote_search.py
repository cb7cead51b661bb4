"""Failures of the HTTP search providers (searxng, brave) become the spec's error codes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from batchd.tools.errors import ToolError
from batchd.tools.web_search import brave, remote, searxng
from batchd.tools.web_search.base import SearchProvider, SearchQuery
from tests.acceptance.server import free_port
from tests.unit.tools import search_wires
from tests.unit.tools.loopback import Loopback

TIMEOUT = 0.3  # seconds: the providers' bound in these tests; the slow server sleeps far longer


def make_searxng(url: str) -> SearchProvider:
    return searxng.SearxngProvider(url, timeout=TIMEOUT)


def make_brave(url: str) -> SearchProvider:
    return brave.BraveProvider(
        api_url=url + "/res/v1/web/search", timeout=TIMEOUT, environ={"BRAVE_API_KEY": "k"}
    )


MAKERS = pytest.mark.parametrize("make", [make_searxng, make_brave], ids=["searxng", "brave"])


@pytest.fixture
async def server() -> AsyncIterator[Loopback]:
    async with Loopback() as running:
        yield running


async def failure(make: Callable[[str], SearchProvider], url: str, query: str = "q") -> ToolError:
    provider = make(url)
    try:
        with pytest.raises(ToolError) as info:
            await provider.search(SearchQuery(query))
    finally:
        await provider.aclose()
    return info.value


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(30)
    return web.json_response({})


def answering(status: int, body: bytes, content_type: str = "application/json") -> Callable[..., object]:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type=content_type)

    return handle


@MAKERS
@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (429, b'{"error": "rate limited"}', "too_many_requests"),
        (500, b"Internal Server Error", "unavailable"),
        (502, b"", "unavailable"),
        (503, b'{"error": "down"}', "unavailable"),
        (404, b"not here", "unavailable"),
        (200, b"<html>not json</html>", "unavailable"),
        (200, b'{"results": [', "unavailable"),
        (200, b"[1, 2, 3]", "unavailable"),
        (200, b'{"results": "nope", "web": {"results": "nope"}}', "unavailable"),
    ],
)
async def test_http_answers_map_to_error_codes(
    server: Loopback, make: Callable[[str], SearchProvider], status: int, body: bytes, code: str
) -> None:
    server.handle = answering(status, body)  # type: ignore[assignment]
    error = await failure(make, server.url)
    assert error.error_code == code
    assert len(server.requests) == 1


@MAKERS
async def test_a_slow_service_times_out_as_unavailable(
    server: Loopback, make: Callable[[str], SearchProvider]
) -> None:
    server.handle = slow
    error = await failure(make, server.url)
    assert error.error_code == "unavailable"
    assert f"within {TIMEOUT:g}s" in error.message


@MAKERS
async def test_a_refused_connection_is_unavailable(make: Callable[[str], SearchProvider]) -> None:
    error = await failure(make, f"http://127.0.0.1:{free_port()}")
    assert error.error_code == "unavailable"
    assert "could not be reached" in error.message


@MAKERS
async def test_an_oversized_answer_is_unavailable(
    server: Loopback, make: Callable[[str], SearchProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote, "MAX_BODY", 1000)
    server.handle = answering(200, b'{"results": [], "pad": "' + b"x" * 5000 + b'"}')  # type: ignore[assignment]
    error = await failure(make, server.url)
    assert error.error_code == "unavailable"
    assert "more than 1000 bytes" in error.message


@MAKERS
@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("x" * (remote.MAX_QUERY_CHARS + 1), "query_too_long"),
        (" ".join(["w"] * (remote.MAX_QUERY_WORDS + 1)), "query_too_long"),
        ("", "invalid_tool_input"),
        ("   ", "invalid_tool_input"),
    ],
)
async def test_bad_queries_are_refused_before_any_call(
    server: Loopback, make: Callable[[str], SearchProvider], query: str, code: str
) -> None:
    error = await failure(make, server.url, query)
    assert error.error_code == code
    assert server.requests == []


@MAKERS
async def test_the_longest_query_allowed_is_sent(
    server: Loopback, make: Callable[[str], SearchProvider]
) -> None:
    server.handle = answering(200, b'{"results": []}')  # type: ignore[assignment]
    provider = make(server.url)
    try:
        assert await provider.search(SearchQuery("y" * remote.MAX_QUERY_CHARS)) == []
    finally:
        await provider.aclose()
    assert server.requests[0].query["q"] == "y" * remote.MAX_QUERY_CHARS


@pytest.mark.parametrize(
    ("make", "result", "serve", "page_of"),
    [
        (make_searxng, search_wires.searxng_result, search_wires.searxng_pages, lambda r: r.query["pageno"]),
        (
            make_brave,
            search_wires.brave_result,
            search_wires.brave_pages,
            lambda r: (r.query["count"], r.query["offset"]),  # full pages of 20 once filtering
        ),
    ],
    ids=["searxng", "brave"],
)
async def test_domain_filters_apply_to_hits_and_more_pages_fill_max_results(
    server: Loopback,
    make: Callable[[str], SearchProvider],
    result: Callable[..., search_wires.Result],
    serve: Callable[..., None],
    page_of: Callable[[web.Request], object],
) -> None:
    serve(
        server,
        [result(i, "other.org") for i in range(10)] + [result(1, "docs.example.com")],
        [result(2, "example.com"), result(3, "evil-example.com"), result(4, "other.org")],
        [result(5, "example.com"), result(6, "example.com")],
    )
    provider = make(server.url)
    try:
        hits = await provider.search(SearchQuery("q", max_results=3, allowed_domains=("example.com",)))
    finally:
        await provider.aclose()
    assert [h.url for h in hits] == [
        "https://docs.example.com/page1",
        "https://example.com/page2",
        "https://example.com/page5",
    ]
    pages = [page_of(r) for r in server.requests]
    assert pages == (["1", "2", "3"] if make is make_searxng else [("20", "0"), ("20", "1"), ("20", "2")])
    assert all(r.query["q"] == "q" for r in server.requests)  # no site: operators in the query


def test_page_age_and_plain_text() -> None:
    assert remote.page_age("2024-08-08T12:00:00Z") == "August 8, 2024"
    assert remote.page_age("2024-01-31") == "January 31, 2024"
    assert remote.page_age("3 weeks ago") == "3 weeks ago"
    assert remote.page_age("") is None and remote.page_age(None) is None and remote.page_age(5) is None
    assert remote.plain("a <b>bold</b>\n&lt;tag&gt;  &amp; x") == "a bold <tag> & x"
    assert remote.plain(None) == ""
