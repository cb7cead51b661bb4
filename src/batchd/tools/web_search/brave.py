"""The `brave` provider: the Brave Search API's web search.

Wire (Brave's Web Search API reference — query parameters, request headers, response objects —
at api-dashboard.search.brave.com/app/documentation/web-search):

    GET https://api.search.brave.com/res/v1/web/search?q=…&count=N&offset=P&text_decorations=false
        [&country=DE]
        X-Subscription-Token: <key>       [X-Loc-City, X-Loc-State-Name, X-Loc-Country, X-Loc-Timezone]
    -> {"type": "search", "query": {"original": …, "more_results_available": bool},
        "web": {"results": [{"url", "title", "description", "age"?, "page_age"?, "extra_snippets"?}, …]}}

`q` is at most 400 characters and 50 words (remote.MAX_QUERY_*); `count` at most 20; `offset` is
a page number (0-based, at most 9), so more results are more pages. `web` is absent when nothing
matched. `country` is a 2-letter code from Brave's list of supported countries: one it does not
support is answered 422, which batchd reports as `unavailable`. The key is read from the environment
variable the settings name (BRAVE_API_KEY by default) when the provider is built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from batchd.tools.errors import ToolError
from batchd.tools.web_search import remote
from batchd.tools.web_search.base import SearchHit, SearchQuery

API_URL = "https://api.search.brave.com/res/v1/web/search"
DEFAULT_KEY_ENV = "BRAVE_API_KEY"
MAX_COUNT = 20  # results per page, Brave's bound

# user_location field -> Brave's location header (used for local ranking).
_LOCATION_HEADERS = {
    "city": "X-Loc-City",
    "region": "X-Loc-State-Name",
    "country": "X-Loc-Country",
    "timezone": "X-Loc-Timezone",
}


class BraveProvider:
    """Web search through the Brave Search API; `api_url` is overridable for a proxy or a test."""

    name = "brave"

    def __init__(
        self,
        *,
        api_key_env: str = DEFAULT_KEY_ENV,
        api_url: str = API_URL,
        timeout: float = remote.DEFAULT_TIMEOUT,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.api_key_env = api_key_env
        self.api_url = api_url
        self._key = (os.environ if environ is None else environ).get(api_key_env, "").strip()
        self._api = remote.JsonApi("Brave Search", timeout=timeout)

    async def search(self, q: SearchQuery) -> list[SearchHit]:
        query = remote.check_query(q.query)
        if not self._key:
            raise ToolError("unavailable", self._no_key())
        filtered = bool(q.allowed_domains or q.blocked_domains)
        # Over-fetch when hits may be filtered out, so that max_results can still be filled.
        count = MAX_COUNT if filtered else max(1, min(q.max_results, MAX_COUNT))
        params = {"q": query, "count": str(count), "text_decorations": "false"}
        headers = {"X-Subscription-Token": self._key}
        location = q.user_location or {}
        country = location.get("country")
        if isinstance(country, str) and len(country) == 2 and country.isalpha():
            params["country"] = country.upper()
        for key, header in _LOCATION_HEADERS.items():
            value = location.get(key)
            if isinstance(value, str) and value.strip():
                headers[header] = value.strip()

        async def fetch_page(page: int) -> tuple[list[SearchHit], bool]:
            answer = await self._api.get(self.api_url, {**params, "offset": str(page)}, headers)
            return _hits(answer, count)

        return await remote.collect(q, fetch_page)

    async def health(self) -> str | None:
        # Brave bills every call, so health is the configuration only: a key is there or not.
        return None if self._key else self._no_key()

    async def aclose(self) -> None:
        await self._api.aclose()

    def _no_key(self) -> str:
        return f"no Brave Search API key: set the environment variable {self.api_key_env}"


def _hits(answer: Any, count: int) -> tuple[list[SearchHit], bool]:
    if not isinstance(answer, dict):
        raise ToolError("unavailable", "Brave Search answered with JSON that is not an object")
    web = answer.get("web")
    if web is None:
        return [], False  # no `web` section: nothing matched
    results = web.get("results") if isinstance(web, dict) else None
    if not isinstance(results, list):
        raise ToolError("unavailable", "Brave Search answered web.results that is not a list")
    hits = []
    for item in results:
        if not isinstance(item, dict):
            continue
        parts = [item.get("description")]
        snippets = item.get("extra_snippets")
        if isinstance(snippets, list):
            parts += snippets
        text = " ".join(part for part in parts if isinstance(part, str))
        found = remote.hit(item.get("url"), item.get("title"), text, item.get("page_age") or item.get("age"))
        if found is not None:
            hits.append(found)
    query = answer.get("query")
    more = query.get("more_results_available") if isinstance(query, dict) else None
    return hits, more if isinstance(more, bool) else len(results) >= count
