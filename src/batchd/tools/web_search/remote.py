"""What the providers that call a search service over HTTP share (searxng.py, brave.py).

A provider's failures become the spec's error codes, never an exception that crashes a request:

    HTTP 429                                         -> too_many_requests
    connection refused/reset, timeout, HTTP 5xx,
    any other HTTP error, a body that is not JSON    -> unavailable
    an empty query                                   -> invalid_tool_input
    a query over MAX_QUERY_CHARS or MAX_QUERY_WORDS  -> query_too_long

Domain filters are applied here, to the returned hits, whatever the service did with the query:
`site:` operators are not honoured by every engine behind a metasearch, so the rule holds only if
batchd checks each hit itself. To still fill `max_results` when hits are filtered out, `collect`
asks for further pages, up to MAX_PAGES.
"""

from __future__ import annotations

import datetime
import html
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import orjson

from batchd.backends import http
from batchd.tools import domains
from batchd.tools.errors import ToolError
from batchd.tools.web_search.base import SearchHit, SearchQuery

# Brave documents "a maximum of 400 characters and 50 words" for its `q`; SearXNG documents no
# limit, and the engines behind it have their own. One bound for both keeps a query portable.
MAX_QUERY_CHARS = 400
MAX_QUERY_WORDS = 50
MAX_PAGES = 3  # result pages asked for one search, to fill max_results after filtering
MAX_BODY = 4 * 1024 * 1024  # bytes: a search answer is tens of KiB; more is not a search answer
DEFAULT_TIMEOUT = 10.0  # seconds, for one page

_TAG = re.compile(r"<[^>]*>")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip

PageFetcher = Callable[[int], Awaitable[tuple[list[SearchHit], bool]]]


def check_query(query: str) -> str:
    """The query to send, or ToolError: empty (invalid_tool_input) or too long (query_too_long)."""
    query = query.strip()
    if not query:
        raise ToolError("invalid_tool_input", "the query is empty")
    if len(query) > MAX_QUERY_CHARS or len(query.split()) > MAX_QUERY_WORDS:
        raise ToolError(
            "query_too_long",
            f"the query has {len(query)} characters and {len(query.split())} words; "
            f"the limit is {MAX_QUERY_CHARS} characters and {MAX_QUERY_WORDS} words",
        )
    return query


async def collect(q: SearchQuery, fetch_page: PageFetcher) -> list[SearchHit]:
    """Up to `q.max_results` hits that pass the domain filters, in the service's order.

    `fetch_page(page)` (0-based) returns that page's hits and whether a further page may exist.
    """
    hits: list[SearchHit] = []
    seen: set[str] = set()
    for page in range(MAX_PAGES):
        batch, more = await fetch_page(page)
        for hit in batch:
            if hit.url in seen or not domains.search_allows(hit.url, q.allowed_domains, q.blocked_domains):
                continue
            seen.add(hit.url)
            hits.append(hit)
        if len(hits) >= q.max_results or not more or not batch:
            break
    return hits[: q.max_results]


def plain(text: Any) -> str:
    """A snippet as plain text: services mark query words up (`<strong>`) and escape entities."""
    if not isinstance(text, str):
        return ""
    return " ".join(html.unescape(_TAG.sub("", text)).split())


def page_age(value: object) -> str | None:
    """A result's date as the API shows it ("April 30, 2025"); other text is kept as given."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text  # already human-readable ("2 days ago", "August 8, 2024")
    # English month names whatever the process's locale (strftime's %B follows LC_TIME).
    return f"{_MONTHS[when.month - 1]} {when.day}, {when.year}"


def hit(url: Any, title: Any, text: Any, age: Any) -> SearchHit | None:
    """One hit from a service's result fields, or None when it has no http(s) URL."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    return SearchHit(url=url, title=plain(title) or url, text=plain(text), page_age=page_age(age))


class JsonApi:
    """A search service's HTTP API: one session, GET requests answering JSON, failures as ToolError.

    The session is opened on the first call (aiohttp binds it to the running event loop).
    """

    def __init__(self, name: str, *, timeout: float, headers: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.timeout = timeout
        self.headers = {"accept": "application/json", **(headers or {})}
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(ssl=http.ssl_context())
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self.headers,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            trust_env=http.proxy_in_env(),
        )
        return self._session

    async def get(self, url: str, params: Mapping[str, str], headers: Mapping[str, str] | None = None) -> Any:
        """GET `url` and decode its JSON answer; raises ToolError as the module docstring maps."""
        status, content = await self.get_raw(url, params, headers)
        if status == 429:
            raise ToolError("too_many_requests", f"{self.name} answered HTTP 429")
        if status >= 400:
            detail = content[:200].decode("utf-8", "replace").strip()
            raise ToolError("unavailable", f"{self.name} answered HTTP {status}: {detail}")
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise ToolError("unavailable", f"{self.name} answered with a body that is not JSON") from exc

    async def get_raw(
        self, url: str, params: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        """The status and (bounded) body of a GET; connection failures and timeouts are ToolError."""
        session = self._session or self._open()
        try:
            async with session.get(url, params=params, headers=headers) as response:
                status = response.status
                content = bytearray()
                async for chunk in response.content.iter_any():
                    content += chunk
                    if len(content) > MAX_BODY:
                        break
        except TimeoutError as exc:
            raise ToolError("unavailable", f"{self.name} did not answer within {self.timeout:g}s") from exc
        except (aiohttp.ClientError, ValueError) as exc:  # ValueError: a URL yarl cannot read
            message = f"{self.name} could not be reached: {type(exc).__name__}: {exc}"
            raise ToolError("unavailable", message) from exc
        if len(content) > MAX_BODY:
            raise ToolError("unavailable", f"{self.name} answered with more than {MAX_BODY} bytes")
        return status, bytes(content)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
