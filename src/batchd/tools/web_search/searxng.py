"""The `searxng` provider: a self-hosted SearXNG's JSON API.

Wire (SearXNG's "Search API" page, docs.searxng.org/dev/search_api, and its JSON output):

    GET {base}/search?q=…&format=json&pageno=N[&language=de-CH]
    -> {"query": …, "results": [{"url", "title", "content", "publishedDate"?, "engine", …}, …],
        "unresponsive_engines": [[engine, reason], …], …}

The instance must have `json` in `search.formats` of its settings.yml (else it answers 403). It
returns a fixed page of results (about 20; there is no count parameter), so more results are more
pages. `language` takes a code such as `en` or `en-US`: batchd derives it from
`user_location.country`, the country's first official language with the country as the region
(`CH` -> `de-CH`), from Babel's CLDR data; nothing is sent for a country Babel does not know.
`GET {base}/healthz` answers `OK` while the instance is up.
"""

from __future__ import annotations

import functools
import urllib.parse
from typing import Any

from batchd import exceptions
from batchd.tools.errors import ToolError
from batchd.tools.web_search import remote
from batchd.tools.web_search.base import SearchHit, SearchQuery


class SearxngProvider:
    """Web search through a SearXNG instance at `base_url` (its root, where /search is)."""

    name = "searxng"

    def __init__(self, base_url: str, *, timeout: float = remote.DEFAULT_TIMEOUT) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise exceptions.ConfigError(f"searxng_url {base_url!r}: give the instance's http(s) URL")
        self.base_url = base_url.rstrip("/")
        self._api = remote.JsonApi(f"SearXNG at {self.base_url}", timeout=timeout)

    async def search(self, q: SearchQuery) -> list[SearchHit]:
        query = remote.check_query(q.query)
        params = {"q": query, "format": "json"}
        language = language_for(q.user_location)
        if language:
            params["language"] = language

        async def fetch_page(page: int) -> tuple[list[SearchHit], bool]:
            answer = await self._api.get(f"{self.base_url}/search", {**params, "pageno": str(page + 1)})
            return _hits(answer, first_page=page == 0)

        return await remote.collect(q, fetch_page)

    async def health(self) -> str | None:
        try:
            status, _ = await self._api.get_raw(f"{self.base_url}/healthz", {})
        except ToolError as exc:
            return exc.message
        return None if status == 200 else f"SearXNG at {self.base_url} answered HTTP {status} on /healthz"

    async def aclose(self) -> None:
        await self._api.aclose()


def _hits(answer: Any, *, first_page: bool) -> tuple[list[SearchHit], bool]:
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list):
        raise ToolError("unavailable", "SearXNG answered without a results list")
    hits = [
        hit
        for item in results
        if isinstance(item, dict)
        and (
            hit := remote.hit(
                item.get("url"), item.get("title"), item.get("content"), item.get("publishedDate")
            )
        )
    ]
    unresponsive = answer.get("unresponsive_engines")
    if first_page and not results and unresponsive:
        # Every engine failed (timeouts, CAPTCHAs, their own rate limits): not "no results".
        raise ToolError("unavailable", f"SearXNG's engines did not answer: {unresponsive}")
    return hits, bool(results)


def language_for(location: dict[str, str] | None) -> str | None:
    """`user_location.country` as a SearXNG language code (`DE` -> `de-DE`), or None."""
    country = (location or {}).get("country")
    if not isinstance(country, str) or len(country) != 2 or not country.isalpha():
        return None
    return _official_language(country.upper())


@functools.lru_cache(maxsize=256)
def _official_language(country: str) -> str | None:
    from babel import languages  # imported on first use: only a located search needs it

    official = languages.get_official_languages(country, de_facto=True)
    # CLDR may name a script (`zh_Hant` for TW); SearXNG takes `lang` or `lang-REGION` only.
    return f"{official[0].partition('_')[0]}-{country}" if official else None
