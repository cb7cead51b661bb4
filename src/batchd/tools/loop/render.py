"""What the model reads back from a tool: search hits and fetched pages as numbered sources.

The same text is produced when a call runs and when a later turn sends its result back, so the
model sees one conversation whichever request it is in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from batchd.tools import citations
from batchd.tools.tokens import Tokens


@dataclasses.dataclass(frozen=True)
class Hit:
    """One search result as the model saw it (what `encrypted_content` carries)."""

    url: str
    title: str
    text: str
    page_age: str | None = None

    def token(self, tokens: Tokens) -> str:
        payload = {"url": self.url, "title": self.title, "text": self.text, "page_age": self.page_age}
        return tokens.encode("content", payload)


def hit_source(hit: Hit, tokens: Tokens) -> citations.Source:
    """The citable source of a hit: quotes of it carry an `encrypted_index` naming the hit and
    the quoted span."""

    def index_for(start: int, end: int) -> str:
        return tokens.encode("index", {"url": hit.url, "start": start, "end": end})

    return citations.Source.search_result(
        url=hit.url, title=hit.title or None, text=hit.text, encrypted_index_for=index_for
    )


def search_results(query: str, hits: Sequence[tuple[int | None, Hit]]) -> str:
    """The tool result text of a search: each hit a numbered source with its URL and date."""
    if not hits:
        return f"No results for {query!r}."
    parts = [f"Search results for {query!r}:"]
    for number, hit in hits:
        meta = f"URL: {hit.url}" + (f"\nPublished: {hit.page_age}" if hit.page_age else "")
        parts.append(_shown(number, hit.title, f"{meta}\n\n{hit.text}"))
    return "\n\n".join(parts)


def fetched(number: int | None, url: str, title: str | None, text: str) -> str:
    """The tool result text of a fetched page or PDF."""
    return _shown(number, title, f"URL: {url}\n\n{text}")


def _shown(number: int | None, title: str | None, body: str) -> str:
    """Source `number` as `citations.render` shows every source; one not citable (None) plain."""
    if number is None:
        return f"{title}\n{body}" if title else body
    return citations.render(number, title, body)


def error(code: str) -> str:
    """The tool result text of a failed call."""
    return f"Error: the tool call failed ({code})."
