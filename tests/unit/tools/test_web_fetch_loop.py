"""Web fetch inside the server-tool loop, with the real Fetcher against the loopback site: the
tool's domain filters hold on redirects, and a URL the conversation showed matches however the
model copies it (scheme, a fragment, sentence punctuation)."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import pytest

from batchd.tools.loop import ToolLoop
from batchd.tools.tokens import Tokens
from batchd.tools.web_fetch import Fetcher
from tests.unit.tools import web_pages
from tests.unit.tools.loopback import Loopback
from tests.unit.tools.model import Corpus, ScriptedModel, message, tool_use


@pytest.fixture
async def server() -> AsyncIterator[Loopback]:
    async with web_pages.site() as running:
        yield running


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    engine = Fetcher(allowed_hosts=("127.0.0.0/8",), timeout=5)
    yield engine
    await engine.aclose()


async def fetch_in_loop(fetcher: Fetcher, prompt: str, url: str, tool: dict[str, Any]) -> dict[str, Any]:
    """The result block of one web_fetch call the model makes for `url` after `prompt`."""

    def script(p: dict[str, Any]) -> dict[str, Any]:
        if any(m["role"] == "user" and isinstance(m["content"], list) for m in p["messages"]):
            return message({"type": "text", "text": "read it"})
        return message(tool_use("web_fetch", url=url))

    loop = ToolLoop(
        ScriptedModel(script),
        provider=Corpus([]),
        fetcher=fetcher,
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


async def test_domain_filters_hold_on_a_redirect(server: Loopback, fetcher: Fetcher) -> None:
    to_localhost = urllib.parse.quote(f"http://localhost:{server.port}/page.html", safe="")
    start = f"{server.url}/redirect?to={to_localhost}"
    for tool in ({"allowed_domains": ["127.0.0.1"]}, {"blocked_domains": ["localhost"]}):
        result = await fetch_in_loop(fetcher, f"Read {start}", start, tool)
        assert result["content"] == {"type": "web_fetch_tool_result_error", "error_code": "url_not_allowed"}
    result = await fetch_in_loop(
        fetcher, f"Read {start}", start, {"allowed_domains": ["127.0.0.1", "localhost"]}
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
    server: Loopback, fetcher: Fetcher, written: str, fetched: str
) -> None:
    host = f"127.0.0.1:{server.port}"
    result = await fetch_in_loop(fetcher, written.format(host=host), fetched.format(host=host), {})
    assert result["content"]["type"] == "web_fetch_result", result["content"]


async def test_a_url_never_shown_is_refused(server: Loopback, fetcher: Fetcher) -> None:
    result = await fetch_in_loop(fetcher, "Read something", f"{server.url}/page.html", {})
    assert result["content"] == {
        "type": "web_fetch_tool_result_error",
        "error_code": "url_not_in_prior_context",
    }
    assert server.requests == []
