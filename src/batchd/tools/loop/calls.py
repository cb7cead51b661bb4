"""Running one server tool call: the result block for the client, the tool_result for the model.

Web search and web fetch run here; code execution in the request's `CodeSession`
(tools/code_execution/session.py).

A call never fails the request: whatever goes wrong — bad input, `max_uses` spent, a provider
down, a URL refused — becomes the result block's error object with the spec's `error_code`
(`{"type": "web_search_tool_result_error", "error_code": "unavailable"}`), and the model is told.
"""

from __future__ import annotations

import datetime
import logging
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from batchd.metrics import Metrics
from batchd.tools import citations, domains
from batchd.tools.code_execution.names import EDITOR
from batchd.tools.code_execution.session import CodeSession
from batchd.tools.errors import ToolError
from batchd.tools.loop import render
from batchd.tools.loop.definitions import ERROR_TYPES, FETCH, SEARCH, ServerTool
from batchd.tools.loop.history import History, urls_in
from batchd.tools.tokens import Tokens
from batchd.tools.web_fetch import context as web_fetch_context
from batchd.tools.web_search.base import SearchProvider, SearchQuery

logger = logging.getLogger("batchd.tools")

MAX_URL_CHARS = 250  # longer URLs are `url_too_long`, as Anthropic's web fetch


class FetchedDocument(Protocol):
    """A fetched page or PDF (tools/web_fetch's `FetchedDocument`)."""

    @property
    def url(self) -> str: ...
    @property
    def title(self) -> str | None: ...
    @property
    def media_type(self) -> str: ...  # "text/plain" (HTML converted) | "application/pdf"
    @property
    def text(self) -> str: ...
    @property
    def pdf_base64(self) -> str | None: ...
    @property
    def retrieved_at(self) -> str: ...


class Fetcher(Protocol):
    """What the loop fetches with (tools/web_fetch's `Fetcher`): raises ToolError on failure."""

    async def fetch(
        self,
        url: str,
        *,
        max_content_tokens: int | None,
        allowed_domains: Sequence[str],
        blocked_domains: Sequence[str],
    ) -> FetchedDocument: ...


class Calls:
    """Runs the server tool calls of one request, counting uses against each tool's `max_uses`."""

    def __init__(
        self,
        tools: dict[str, ServerTool],
        history: History,
        *,
        provider: SearchProvider,
        fetcher: Fetcher | None,
        tokens: Tokens,
        max_results: int,
        metrics: Metrics | None,
        code: CodeSession | None = None,
    ) -> None:
        self.tools, self.history, self.code = tools, history, code
        self.provider, self.fetcher, self.tokens = provider, fetcher, tokens
        self.max_results, self.metrics = max_results, metrics
        self.used: Counter[str] = Counter(history.used)  #: calls made, failed ones included
        self.billed: Counter[str] = Counter()  #: calls that ran (usage.server_tool_use)

    def reserve(self, name: str) -> bool:
        """Count one use of tool `name`; False when its max_uses is already spent. Calls are
        reserved in the order the model made them, before any runs, so the count is exact."""
        self.used[name] += 1
        limit = self.tools[name].max_uses
        return limit is None or self.used[name] <= limit

    async def run(self, call: dict[str, Any], allowed: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        """(result block, tool_result for the model) for `call`, a server_tool_use block."""
        name = call["name"]
        started = time.monotonic()
        try:
            if not allowed:
                limit = self.tools[name].max_uses
                raise ToolError("max_uses_exceeded", f"{name} may be used at most {limit} times")
            if name == SEARCH:
                block, text = await self._search(call)
            elif name == FETCH:
                block, text = await self._fetch(call)
            else:
                block, text = await self._code(call)
            outcome = str(block["content"].get("error_code") or "ok") if name == EDITOR else "ok"
            self.billed[name] += 1
            answer: dict[str, Any] = {"type": "tool_result", "tool_use_id": call["id"], "content": text}
            if outcome != "ok":
                answer["is_error"] = True
        except ToolError as exc:
            outcome = exc.error_code
            block = error_block(call, exc.error_code, exc.message)
            answer = {
                "type": "tool_result",
                "tool_use_id": call["id"],
                "content": render.error(exc.error_code) + (f" {exc.message}" if exc.message else ""),
                "is_error": True,
            }
        if self.metrics is not None:
            self.metrics.tool_call(name, outcome, time.monotonic() - started)
        return block, answer

    async def _code(self, call: dict[str, Any]) -> tuple[dict[str, Any], str]:
        if self.code is None:
            raise ToolError("unavailable", "code execution is not available on this server")
        content, text = await self.code.run(call)
        return {"type": f"{call['name']}_tool_result", "tool_use_id": call["id"], "content": content}, text

    async def _search(self, call: dict[str, Any]) -> tuple[dict[str, Any], str]:
        tool = self.tools[SEARCH]
        query = call["input"].get("query")
        if not isinstance(query, str) or not query.strip():
            raise ToolError("invalid_tool_input", "the query must be a non-empty string")
        q = SearchQuery(
            query=query,
            max_results=self.max_results,
            allowed_domains=tool.allowed_domains,
            blocked_domains=tool.blocked_domains,
            user_location=tool.user_location,
        )
        try:
            found = await self.provider.search(q)
        except ToolError:
            raise
        except Exception as exc:  # a provider's bug must not crash the request
            logger.exception("web search provider %s failed", self.provider.name)
            raise ToolError("unavailable", f"the search failed: {exc}") from exc
        results, shown = [], []
        for found_hit in found[: self.max_results]:
            hit = render.Hit(found_hit.url, found_hit.title, found_hit.text, found_hit.page_age)
            results.append(
                {
                    "type": "web_search_result",
                    "url": hit.url,
                    "title": hit.title,
                    "encrypted_content": hit.token(self.tokens),
                    "page_age": hit.page_age,
                }
            )
            self.history.urls.add(hit.url)
            self.history.urls.update(urls_in(hit.text))
            shown.append((self.history.sources.add(render.hit_source(hit, self.tokens)), hit))
        block = {"type": "web_search_tool_result", "tool_use_id": call["id"], "content": results}
        return block, render.search_results(query, shown)

    async def _fetch(self, call: dict[str, Any]) -> tuple[dict[str, Any], str]:
        tool = self.tools[FETCH]
        url = call["input"].get("url")
        if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ToolError("invalid_tool_input", "the url must be an http:// or https:// URL")
        if len(url) > MAX_URL_CHARS:
            raise ToolError("url_too_long", f"the url is longer than {MAX_URL_CHARS} characters")
        if not domains.fetch_allows(url, tool.allowed_domains, tool.blocked_domains):
            raise ToolError("url_not_allowed", "the tool's domain filter does not allow this URL")
        if not _seen(url, self.history.urls):
            raise ToolError(
                "url_not_in_prior_context",
                "only URLs that appeared in the conversation or an earlier result may be fetched",
            )
        if self.fetcher is None:
            raise ToolError("unavailable", "web fetch is not available on this server")
        try:
            doc = await self.fetcher.fetch(
                url,
                max_content_tokens=tool.max_content_tokens,
                # Redirects are checked against the filters too, hop by hop, by the fetcher.
                allowed_domains=tool.allowed_domains,
                blocked_domains=tool.blocked_domains,
            )
        except ToolError:
            raise
        except Exception as exc:
            logger.exception("web fetch of %s failed", url)
            raise ToolError("unavailable", f"the fetch failed: {exc}") from exc
        if doc.media_type == "application/pdf" and doc.pdf_base64 is not None:
            source = {"type": "base64", "media_type": "application/pdf", "data": doc.pdf_base64}
        else:
            source = {"type": "text", "media_type": "text/plain", "data": doc.text}
        document = {"type": "document", "title": doc.title, "citations": tool.citations, "source": source}
        cited = None
        if tool.cites:
            cited = citations.document_source(document, self.history.sources.next_document_index())
        number = self.history.sources.add(cited)
        self.history.urls.add(doc.url)
        self.history.urls.update(urls_in(doc.text))
        block = {
            "type": "web_fetch_tool_result",
            "tool_use_id": call["id"],
            "content": {
                "type": "web_fetch_result",
                "url": doc.url,
                "retrieved_at": doc.retrieved_at or _now(),
                "content": document,
            },
        }
        return block, render.fetched(number, doc.url, doc.title, doc.text)


def error_block(call: dict[str, Any], code: str, message: str | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {"type": ERROR_TYPES[call["name"]], "error_code": code}
    if call["name"] == EDITOR:  # the one error object with a message (server-tools.md §4.2)
        content["error_message"] = message or None
    return {"type": f"{call['name']}_tool_result", "tool_use_id": call["id"], "content": content}


def _seen(url: str, urls: set[str]) -> bool:
    key = web_fetch_context.url_key(url)
    return key is not None and key in {web_fetch_context.url_key(u) for u in urls}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
