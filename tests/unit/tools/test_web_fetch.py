"""tools/web_fetch: Fetcher against a real loopback site (tests/unit/tools/web_pages.py).

The site is on 127.0.0.1, which the SSRF policy refuses by default: these fetchers let it through
with `allowed_hosts`, the setting users have for the same purpose (test_web_fetch_ssrf.py checks
the refusals).
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import pytest

from batchd.tools.errors import ToolError
from batchd.tools.loop import ToolLoop
from batchd.tools.tokens import Tokens
from batchd.tools.web_fetch import Fetcher, extract, fetcher
from tests.unit.tools import web_pages
from tests.unit.tools.loopback import Loopback
from tests.unit.tools.model import Corpus, ScriptedModel, message, tool_use

ALLOW_LOOPBACK = ("127.0.0.1",)


@pytest.fixture
async def server() -> AsyncIterator[Loopback]:
    async with web_pages.site() as running:
        yield running


@pytest.fixture
async def fetch() -> AsyncIterator[Fetcher]:
    engine = Fetcher(allowed_hosts=ALLOW_LOOPBACK, max_bytes=256 * 1024, timeout=5)
    yield engine
    await engine.aclose()


async def failure(engine: Fetcher, url: str, **kwargs: object) -> ToolError:
    with pytest.raises(ToolError) as info:
        await engine.fetch(url, **kwargs)  # type: ignore[arg-type]
    return info.value


async def test_html_becomes_readable_text_with_its_title(server: Loopback, fetch: Fetcher) -> None:
    url = server.url + "/page.html"
    doc = await fetch.fetch(url)
    assert doc.url == url
    assert doc.title == "Claude Shannon – Biography"
    assert doc.media_type == "text/plain"
    assert web_pages.ARTICLE in doc.text and web_pages.SECOND in doc.text
    assert "do not show" not in doc.text  # scripts
    assert "Contact" not in doc.text and "All rights reserved" not in doc.text  # navigation, footer
    assert doc.pdf_base64 is None and doc.page_texts is None
    assert doc.retrieved_at.endswith("Z") and doc.retrieved_at[:2] == "20"
    request = server.requests[0]
    assert "batchd" in request.headers["User-Agent"]


async def test_spaces_around_the_url_are_dropped(server: Loopback, fetch: Fetcher) -> None:
    doc = await fetch.fetch(f"  {server.url}/short.html\n")
    assert doc.url == f"{server.url}/short.html"


async def test_a_page_without_main_content_keeps_all_its_text(server: Loopback, fetch: Fetcher) -> None:
    doc = await fetch.fetch(server.url + "/short.html")
    assert doc.text == "Tiny page."
    assert doc.title is None


async def test_declared_charset_and_plain_text(server: Loopback, fetch: Fetcher) -> None:
    latin = await fetch.fetch(server.url + "/latin1.html")
    assert latin.title == "Café" and "Crème brûlée." in latin.text
    plain = await fetch.fetch(server.url + "/plain.txt")
    assert plain.text == "Grüße aus Köln — 東京 too.\nSecond line."
    assert plain.media_type == "text/plain" and plain.title is None


@pytest.mark.parametrize("path", ["/doc.pdf", "/octet.pdf"])
async def test_pdf_keeps_its_bytes_and_the_text_of_each_page(
    server: Loopback, fetch: Fetcher, path: str
) -> None:
    doc = await fetch.fetch(server.url + path, max_content_tokens=1)  # not applied to PDFs
    assert doc.media_type == "application/pdf"
    assert doc.page_texts == web_pages.PDF_PAGES
    assert doc.text == "\n\n".join(web_pages.PDF_PAGES)
    assert base64.b64decode(doc.pdf_base64 or "") == web_pages.pdf_bytes()


async def test_max_content_tokens_cuts_text(server: Loopback, fetch: Fetcher) -> None:
    whole = (await fetch.fetch(server.url + "/page.html")).text
    cut = (await fetch.fetch(server.url + "/page.html", max_content_tokens=10)).text
    assert len(cut) <= 10 * extract.CHARS_PER_TOKEN
    assert whole.startswith(cut) and len(cut) > 30  # cut at a word boundary near the bound


def test_truncate_rule() -> None:
    assert extract.truncate("abc", None) == "abc"
    assert extract.truncate("one two three four", 2) == "one two"  # 8 characters, then trimmed
    assert extract.truncate("abcdefghij klm", 2) == "abcdefgh"  # no space near the bound: a hard cut
    assert extract.truncate("x" * 100, 5) == "x" * 20
    assert extract.truncate("a" * 37 + " bcdefgh", 10) == "a" * 37  # the space is within the last tenth
    assert extract.truncate("short", 0) == ""


async def test_redirects_are_followed_to_the_page(server: Loopback, fetch: Fetcher) -> None:
    target = urllib.parse.quote(server.url + "/page.html", safe="")
    for status in (301, 302, 303, 307, 308):
        doc = await fetch.fetch(f"{server.url}/redirect?status={status}&to={target}")
        assert web_pages.ARTICLE in doc.text
    doc = await fetch.fetch(f"{server.url}/chain/{fetcher.MAX_REDIRECTS}")
    assert doc.title == "Claude Shannon – Biography"
    assert doc.url == f"{server.url}/chain/{fetcher.MAX_REDIRECTS}"  # the URL asked for


async def test_too_many_redirects(server: Loopback, fetch: Fetcher) -> None:
    error = await failure(fetch, f"{server.url}/chain/{fetcher.MAX_REDIRECTS + 1}")
    assert error.error_code == "url_not_accessible"
    assert "redirects" in error.message
    assert len(server.requests) == fetcher.MAX_REDIRECTS + 1


async def test_a_redirect_off_http_is_not_followed(server: Loopback, fetch: Fetcher) -> None:
    error = await failure(fetch, f"{server.url}/redirect?to=file:///etc/passwd")
    assert error.error_code == "url_not_accessible"
    assert len(server.requests) == 1


async def test_domain_filters_apply_to_the_url_and_every_redirect(server: Loopback, fetch: Fetcher) -> None:
    error = await failure(fetch, server.url + "/page.html", blocked_domains=("127.0.0.1",))
    assert error.error_code == "url_not_allowed"
    assert server.requests == []
    to_localhost = server.url.replace("127.0.0.1", "localhost") + "/page.html"
    start = f"{server.url}/redirect?to={urllib.parse.quote(to_localhost, safe='')}"
    error = await failure(fetch, start, allowed_domains=("127.0.0.1",))
    assert error.error_code == "url_not_allowed"
    assert "localhost" in error.message
    assert len(server.requests) == 1
    error = await failure(fetch, start, blocked_domains=("localhost",))
    assert error.error_code == "url_not_allowed"
    # An entry with a path never matches a fetch: it allows nothing.
    error = await failure(fetch, server.url + "/page.html", allowed_domains=("127.0.0.1/page.html",))
    assert error.error_code == "url_not_allowed"


async def test_a_huge_page_is_read_up_to_the_bound(server: Loopback) -> None:
    engine = Fetcher(allowed_hosts=ALLOW_LOOPBACK, max_bytes=100_000, timeout=30)
    try:
        doc = await engine.fetch(server.url + "/huge.html")
    finally:
        await engine.aclose()
    assert doc.title == "Huge"
    assert 50_000 < len(doc.text) <= 100_000
    assert {w for w in doc.text.split() if w != "word"} <= {"w", "wo", "wor"}  # the last one cut


async def test_a_pdf_over_the_bound_is_refused(server: Loopback, fetch: Fetcher) -> None:
    error = await failure(fetch, server.url + "/huge.pdf")
    assert error.error_code == "url_not_accessible"
    assert "larger than" in error.message
    small = Fetcher(allowed_hosts=ALLOW_LOOPBACK, max_bytes=1000)
    try:
        error = await failure(small, server.url + "/doc.pdf")  # no Content-Length check needed
    finally:
        await small.aclose()
    assert error.error_code == "url_not_accessible" and "larger than" in error.message


@pytest.mark.parametrize("path", ["/slow", "/stall"])
async def test_a_slow_page_is_not_accessible(server: Loopback, path: str) -> None:
    engine = Fetcher(allowed_hosts=ALLOW_LOOPBACK, timeout=0.5)
    try:
        error = await failure(engine, server.url + path)
    finally:
        await engine.aclose()
    assert error.error_code == "url_not_accessible"
    assert "within 0.5s" in error.message


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, "too_many_requests"),
        (404, "url_not_accessible"),
        (403, "url_not_accessible"),
        (500, "url_not_accessible"),
        (503, "url_not_accessible"),
        (204, None),
        (304, "url_not_accessible"),
    ],
)
async def test_http_status(server: Loopback, fetch: Fetcher, status: int, code: str | None) -> None:
    url = f"{server.url}/status/{status}"
    if code is None:
        assert (await fetch.fetch(url)).text == ""
        return
    error = await failure(fetch, url)
    assert error.error_code == code
    assert f"HTTP {status}" in error.message


@pytest.mark.parametrize(
    ("content_type", "supported"),
    [
        ("image/png", False),
        ("application/json", False),
        ("application/zip", False),
        ("video/mp4", False),
        ("text/csv", True),
        ("text/markdown; charset=utf-8", True),
        ("application/octet-stream", False),  # neither PDF nor HTML bytes
    ],
)
async def test_content_types(server: Loopback, fetch: Fetcher, content_type: str, supported: bool) -> None:
    url = f"{server.url}/type?t={urllib.parse.quote(content_type)}"
    if supported:
        assert (await fetch.fetch(url)).media_type == "text/plain"
        return
    error = await failure(fetch, url)
    assert error.error_code == "unsupported_content_type"
    assert content_type.split(";")[0] in error.message


async def test_a_refused_connection_is_not_accessible(fetch: Fetcher) -> None:
    from tests.acceptance.server import free_port

    error = await failure(fetch, f"http://127.0.0.1:{free_port()}/")
    assert error.error_code == "url_not_accessible"
    assert "could not be reached" in error.message


async def test_an_unknown_host_is_not_accessible(fetch: Fetcher) -> None:
    error = await failure(fetch, "http://no-such-host.invalid/")
    assert error.error_code == "url_not_accessible"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        (None, "invalid_tool_input"),
        ("", "invalid_tool_input"),
        ("   ", "invalid_tool_input"),
        ("ftp://example.com/file", "invalid_tool_input"),
        ("file:///etc/passwd", "invalid_tool_input"),
        ("javascript:alert(1)", "invalid_tool_input"),
        ("example.com/page", "invalid_tool_input"),
        ("http://", "invalid_tool_input"),
        ("http://example.com:port/", "invalid_tool_input"),
        ("http://user:secret@example.com/", "invalid_tool_input"),
        ("https://example.com/" + "a" * 231, "url_too_long"),
    ],
)
async def test_urls_refused_before_any_request(fetch: Fetcher, url: object, code: str) -> None:
    error = await failure(fetch, url)  # type: ignore[arg-type]
    assert error.error_code == code


def test_the_length_bound_is_250_characters() -> None:
    fetcher.check_url("https://example.com/" + "a" * 230)  # 250: fine
    with pytest.raises(ToolError, match="url_too_long"):
        fetcher.check_url("https://example.com/" + "a" * 231)


async def test_a_converter_failure_is_unavailable(
    server: Loopback, fetch: Fetcher, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> extract.Extracted:
        raise RuntimeError("converter bug")

    monkeypatch.setattr(extract, "extract", broken)
    error = await failure(fetch, server.url + "/page.html")
    assert error.error_code == "unavailable"
    assert "RuntimeError" in error.message
    assert "converting" in caplog.text


async def test_an_unreadable_pdf_is_not_accessible(server: Loopback, fetch: Fetcher) -> None:
    error = await failure(fetch, f"{server.url}/type?t=application/pdf")
    assert error.error_code == "url_not_accessible"
    assert "could not be read" in error.message


# Inside the server-tool loop: the tool's domain filters hold on redirects, and a URL the
# conversation showed matches however the model copies it (scheme case, a fragment, punctuation).


async def fetch_in_loop(fetch: Fetcher, prompt: str, url: str, tool: dict[str, Any]) -> dict[str, Any]:
    """The result block of one web_fetch call the model makes for `url` after `prompt`."""

    def script(p: dict[str, Any]) -> dict[str, Any]:
        if any(m["role"] == "user" and isinstance(m["content"], list) for m in p["messages"]):
            return message({"type": "text", "text": "read it"})
        return message(tool_use("web_fetch", url=url))

    loop = ToolLoop(
        ScriptedModel(script),
        provider=Corpus([]),
        fetcher=fetch,
        tokens=Tokens(b"k" * 32),
        max_iterations=10,
    )
    params = {
        "model": "m",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": prompt}],
        "tools": [{"type": "web_fetch_20250910", "name": "web_fetch", **tool}],
    }
    answer = await loop.create_message(params)
    result: dict[str, Any] = answer["content"][1]
    assert result["type"] == "web_fetch_tool_result"
    return result


async def test_domain_filters_hold_on_a_redirect(server: Loopback, fetch: Fetcher) -> None:
    to_localhost = urllib.parse.quote(f"http://localhost:{server.port}/page.html", safe="")
    start = f"{server.url}/redirect?to={to_localhost}"
    for tool in ({"allowed_domains": ["127.0.0.1"]}, {"blocked_domains": ["localhost"]}):
        result = await fetch_in_loop(fetch, f"Read {start}", start, tool)
        assert result["content"] == {"type": "web_fetch_tool_result_error", "error_code": "url_not_allowed"}
    result = await fetch_in_loop(
        fetch, f"Read {start}", start, {"allowed_domains": ["127.0.0.1", "localhost"]}
    )
    assert result["content"]["type"] == "web_fetch_result"
    assert web_pages.ARTICLE in result["content"]["content"]["source"]["data"]


@pytest.mark.parametrize(
    ("written", "fetched"),
    [
        ("http://{host}/page.html", "http://{host}/page.html"),
        ("HTTP://{host}/page.html.", "http://{host}/page.html"),
        ("<http://{host}/page.html#top>", "http://{host}/page.html"),
    ],
)
async def test_a_url_the_user_wrote_matches_as_the_model_copies_it(
    server: Loopback, fetch: Fetcher, written: str, fetched: str
) -> None:
    host = f"127.0.0.1:{server.port}"
    result = await fetch_in_loop(fetch, written.format(host=host), fetched.format(host=host), {})
    assert result["content"]["type"] == "web_fetch_result", result["content"]


async def test_a_url_never_shown_is_refused(server: Loopback, fetch: Fetcher) -> None:
    result = await fetch_in_loop(fetch, "Read something", f"{server.url}/page.html", {})
    assert result["content"] == {
        "type": "web_fetch_tool_result_error",
        "error_code": "url_not_in_prior_context",
    }
    assert server.requests == []
