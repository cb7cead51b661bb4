"""SearXNG's and Brave's wires as the loopback test server speaks them: results and pages."""

from __future__ import annotations

from aiohttp import web

from tests.unit.tools.loopback import Loopback

Result = dict[str, object]


def searxng_result(i: int, host: str = "example.com", **extra: object) -> Result:
    return {
        "url": f"https://{host}/page{i}",
        "title": f"Page {i}",
        "content": f"About <span class='highlight'>page</span> {i} &amp; more",
        "engine": "duckduckgo",
        "score": 1.0,
        **extra,
    }


def searxng_pages(server: Loopback, *per_page: list[Result], **extra: object) -> None:
    """Page `pageno` (1-based) is per_page[pageno - 1]; empty pages after them."""

    async def handle(request: web.Request) -> web.Response:
        page = int(request.query["pageno"])
        results = per_page[page - 1] if page <= len(per_page) else []
        return web.json_response({"query": request.query["q"], "results": results, **extra})

    server.handle = handle


def brave_result(i: int, host: str = "example.com", **extra: object) -> Result:
    return {
        "type": "search_result",
        "url": f"https://{host}/page{i}",
        "title": f"Page <strong>{i}</strong>",
        "description": f"The <strong>page</strong> {i} description",
        **extra,
    }


def brave_pages(server: Loopback, *per_page: list[Result]) -> None:
    """Page `offset` is per_page[offset]; `more_results_available` while pages remain."""

    async def handle(request: web.Request) -> web.Response:
        offset = int(request.query["offset"])
        body: dict[str, object] = {
            "type": "search",
            "query": {"original": request.query["q"], "more_results_available": offset + 1 < len(per_page)},
        }
        if offset < len(per_page) and per_page[offset]:
            body["web"] = {"type": "search", "results": per_page[offset]}
        return web.json_response(body)

    server.handle = handle
