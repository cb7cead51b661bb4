"""`Fetcher`: one URL -> a `FetchedDocument`, within the size, time and address bounds, or a ToolError.

Error codes (spec §3), in the order they are checked:

    not a string, empty, unparsable, credentials in it   -> invalid_tool_input
    over 250 characters                                   -> url_too_long
    a scheme other than http/https                        -> invalid_tool_input
    the domain filters refuse it (this hop or a redirect) -> url_not_allowed
    the SSRF policy refuses its address (ssrf.py)         -> url_not_allowed
    HTTP 429                                              -> too_many_requests
    other HTTP errors, more than MAX_REDIRECTS redirects,
    connection failures, DNS failures, the time bound     -> url_not_accessible
    a type other than text, HTML or PDF                   -> unsupported_content_type
    a PDF over the size bound, or one pypdf cannot read   -> url_not_accessible

The size bound (`max_bytes`, the `web_fetch.max_bytes` setting) counts decoded bytes as they
stream in, and the connection is dropped once it is passed: a page of text or HTML keeps its first
`max_bytes` (then converted, and cut to `max_content_tokens`); a PDF cut short cannot be read, so a
larger one is refused. The time bound (`timeout`, `web_fetch.timeout`) covers the whole fetch,
redirects included; conversion runs after it, in a worker thread.

Redirects (301, 302, 303, 307, 308) are followed by hand, at most MAX_REDIRECTS, each hop checked
again (scheme, domain filters, address) before it is requested. The connection never goes through
an HTTP proxy from the environment: a proxy resolves names itself, which would bypass the address
checks.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
import yarl

from batchd import config, exceptions, models
from batchd.backends import http
from batchd.config import settings as config_settings
from batchd.tools import domains
from batchd.tools.errors import ToolError
from batchd.tools.web_fetch import extract, ssrf

logger = logging.getLogger("batchd.tools")

MAX_URL_CHARS = 250  # the API's bound on the URL the model asks for
MAX_REDIRECTS = 5
DEFAULT_MAX_BYTES = config_settings.DEFAULT_WEB_FETCH_MAX_BYTES
DEFAULT_TIMEOUT = config_settings.DEFAULT_WEB_FETCH_TIMEOUT
REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "Mozilla/5.0 (compatible; batchd-web-fetch)"
ACCEPT = "text/html,application/xhtml+xml,application/pdf;q=0.9,text/plain;q=0.8,text/*;q=0.7"


@dataclass(frozen=True)
class FetchedDocument:
    """What one fetch returns: the content of the `web_fetch_result`'s document block."""

    url: str
    title: str | None
    media_type: str  # "text/plain" (HTML converted) | "application/pdf"
    text: str  # extracted text (PDF: the text of its pages, joined)
    pdf_base64: str | None  # PDFs: the source, for the document block
    page_texts: tuple[str, ...] | None  # PDFs: the text of each page, for page_location citations
    retrieved_at: str  # RFC 3339


class Fetcher:
    """Fetches pages for web fetch. One per process (it holds a connection pool); `aclose()` it.

    allowed_hosts: the SSRF exceptions (ssrf.Policy). resolver: the DNS resolver under the policy
    (default: aiohttp's); the policy filters whatever it answers.
    """

    def __init__(
        self,
        *,
        allowed_hosts: Sequence[str] = (),
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = DEFAULT_TIMEOUT,
        resolver: aiohttp.abc.AbstractResolver | None = None,
    ) -> None:
        self.policy = ssrf.Policy(allowed_hosts)
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: config.Settings) -> Fetcher:
        """The fetcher of the `[web_fetch]` settings (allowed_hosts, max_bytes, timeout).

        Raises exceptions.ConfigError for an allowed_hosts entry that is neither a host name nor an
        address range.
        """
        try:
            return cls(
                allowed_hosts=settings.web_fetch_allowed_hosts,
                max_bytes=settings.web_fetch_max_bytes,
                timeout=settings.web_fetch_timeout,
            )
        except ValueError as exc:
            raise exceptions.ConfigError(str(exc)) from exc

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            resolver=ssrf.SafeResolver(self.policy, self._resolver), ssl=http.ssl_context()
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"user-agent": USER_AGENT, "accept": ACCEPT},
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            trust_env=False,  # never through a proxy: see the module docstring
        )
        return self._session

    async def fetch(
        self,
        url: str,
        *,
        max_content_tokens: int | None = None,
        allowed_domains: Sequence[str] = (),
        blocked_domains: Sequence[str] = (),
    ) -> FetchedDocument:
        """Fetch `url` and convert it; raises ToolError with the spec's code (module docstring)."""
        url = check_url(url)
        try:
            async with asyncio.timeout(self.timeout):
                kind, charset, body = await self._get(url, allowed_domains, blocked_domains)
        except TimeoutError as exc:
            raise ToolError("url_not_accessible", f"{url} did not load within {self.timeout:g}s") from exc
        retrieved_at = models.rfc3339(time.time()) or ""
        try:
            found = await asyncio.to_thread(extract.extract, kind, body, charset, max_content_tokens)
        except ToolError:
            raise
        except Exception as exc:  # a converter's bug: this fetch fails, never the request
            logger.exception("web fetch: converting %s failed", url)
            raise ToolError("unavailable", f"the page could not be converted: {type(exc).__name__}") from exc
        return FetchedDocument(
            url=url,
            title=found.title,
            media_type=found.media_type,
            text=found.text,
            pdf_base64=found.pdf_base64,
            page_texts=found.page_texts,
            retrieved_at=retrieved_at,
        )

    async def _get(
        self, url: str, allowed: Sequence[str], blocked: Sequence[str]
    ) -> tuple[str, str | None, bytes]:
        session = self._session or self._open()
        target = yarl.URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            # The URL object checked is the one requested, so its host is the one connected to.
            host = self._check_hop(target, allowed, blocked)
            try:
                async with session.get(target, allow_redirects=False) as response:
                    if response.status in REDIRECTS and "location" in response.headers:
                        target = _next_hop(target, response.headers["location"])
                        continue
                    _check_status(target, response.status)
                    return await self._body(target, response)
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, ssrf.UnsafeAddress):
                    raise ToolError("url_not_allowed", str(exc.os_error)) from exc
                raise ToolError("url_not_accessible", f"{host} could not be reached: {exc.os_error}") from exc
            except aiohttp.ClientError as exc:
                raise ToolError("url_not_accessible", f"{target}: {type(exc).__name__}: {exc}") from exc
        raise ToolError("url_not_accessible", f"more than {MAX_REDIRECTS} redirects")

    def _check_hop(self, target: yarl.URL, allowed: Sequence[str], blocked: Sequence[str]) -> str:
        """The hop's host, once its scheme, domain filters and (for an IP literal) address pass."""
        host = target.raw_host
        if target.scheme not in ("http", "https") or not host:
            raise ToolError("url_not_accessible", f"redirected to {target}, which is not an http(s) URL")
        if not domains.fetch_allows(str(target), allowed, blocked):
            raise ToolError("url_not_allowed", f"{host} is not allowed by the tool's domain filters")
        try:
            self.policy.check_literal(host)
        except ssrf.UnsafeAddress as exc:
            raise ToolError("url_not_allowed", str(exc)) from exc
        return host

    async def _body(self, url: yarl.URL, response: aiohttp.ClientResponse) -> tuple[str, str | None, bytes]:
        content_type = response.headers.get("content-type")
        declared = extract.kind_of(content_type, b"") if content_type else None
        if declared == "pdf" and (response.content_length or 0) > self.max_bytes:
            raise _pdf_too_large(self.max_bytes)
        body = bytearray()
        async for chunk in response.content.iter_any():
            body += chunk
            if len(body) > self.max_bytes:
                break  # leaving the block drops the connection: the rest is never read
        kind = extract.kind_of(content_type, bytes(body[:1024]))
        if kind is None:
            shown = (content_type or "no Content-Type").split(";")[0]
            raise ToolError(
                "unsupported_content_type", f"{url} is {shown}; web fetch reads text, HTML and PDF"
            )
        if len(body) > self.max_bytes:
            if kind == "pdf":
                raise _pdf_too_large(self.max_bytes)
            del body[self.max_bytes :]
        return kind, extract.charset_of(content_type), bytes(body)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def check_url(url: object) -> str:
    """`url` without surrounding spaces, once it passes the checks made before anything is sent:
    shape, length, scheme (module docstring)."""
    if not isinstance(url, str) or not url.strip():
        raise ToolError("invalid_tool_input", "url must be a non-empty string")
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise ToolError("url_too_long", f"the URL has {len(url)} characters; the limit is {MAX_URL_CHARS}")
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ToolError("invalid_tool_input", f"{url!r} is not a valid URL: {exc}") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise ToolError("invalid_tool_input", f"{url!r}: web fetch takes http and https URLs only")
    if not host:
        raise ToolError("invalid_tool_input", f"{url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise ToolError("invalid_tool_input", f"{url!r}: credentials in a URL are not accepted")
    return url


def _next_hop(url: yarl.URL, location: str) -> yarl.URL:
    try:
        return url.join(yarl.URL(location.strip())).with_fragment(None)
    except ValueError as exc:
        raise ToolError("url_not_accessible", f"{url} redirected to an invalid URL {location!r}") from exc


def _check_status(url: yarl.URL, status: int) -> None:
    if status == 429:
        raise ToolError("too_many_requests", f"{url} answered HTTP 429")
    if not 200 <= status < 300:
        raise ToolError("url_not_accessible", f"{url} answered HTTP {status}")


def _pdf_too_large(max_bytes: int) -> ToolError:
    return ToolError("url_not_accessible", f"the PDF is larger than the {max_bytes}-byte limit of web fetch")
