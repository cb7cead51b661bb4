"""What a web search provider is: a query in, hits out, or a `ToolError`.

Every provider (`local`, `searxng`, `brave`) implements `SearchProvider`. It applies the domain
filters itself — passing them upstream where the API supports it, and always filtering the hits it
returns with `tools/domains.py`, so the rule holds whatever the upstream did — and turns its
failures into `ToolError`s with the spec's codes (`unavailable`, `too_many_requests`,
`query_too_long`), never another exception.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol


@dataclasses.dataclass(frozen=True)
class SearchHit:
    """One result: `text` is the page text the model sees (a snippet, or the page itself)."""

    url: str
    title: str
    text: str
    page_age: str | None = None  #: human-readable last update, e.g. "April 30, 2025"


@dataclasses.dataclass(frozen=True)
class SearchQuery:
    query: str
    max_results: int = 5
    allowed_domains: tuple[str, ...] = ()
    blocked_domains: tuple[str, ...] = ()
    #: the tool's user_location ({"type": "approximate", "city"?, "region"?, "country"?, "timezone"?})
    user_location: dict[str, str] | None = None


class SearchProvider(Protocol):
    name: str  #: "local" | "searxng" | "brave"

    async def search(self, q: SearchQuery) -> list[SearchHit]:
        """The hits for `q`, best first, at most `q.max_results`; raises `ToolError`."""
        ...

    async def health(self) -> str | None:
        """None when the provider is up, else why not (shown by /health)."""
        ...

    async def aclose(self) -> None: ...
