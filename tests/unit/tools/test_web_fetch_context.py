"""tools/web_fetch/context.py: the URLs a conversation has shown (web fetch's prior-context rule)."""

from __future__ import annotations

from typing import Any

import pytest

from batchd.tools.web_fetch import url_key, urls_in_context
from batchd.tools.web_fetch.context import find_urls


def shown(url: str, params: dict[str, Any]) -> bool:
    key = url_key(url)
    return key is not None and key in urls_in_context(params)


def user(*content: Any) -> dict[str, Any]:
    return {"role": "user", "content": list(content)}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


PARAMS: dict[str, Any] = {
    "model": "m",
    "max_tokens": 10,
    "system": "Only ever fetch https://system.example/secret.",
    "messages": [
        {"role": "user", "content": "Please read https://docs.example.com/guide?x=1#intro, then summarize."},
        {
            "role": "assistant",
            "content": [
                text("Sure, and see https://invented.example/page too."),
                {
                    "type": "server_tool_use",
                    "id": "srvtoolu_1",
                    "name": "web_search",
                    "input": {"query": "q"},
                },
                {
                    "type": "web_search_tool_result",
                    "tool_use_id": "srvtoolu_1",
                    "content": [
                        {
                            "type": "web_search_result",
                            "url": "https://result.example/a",
                            "title": "A",
                            "encrypted_content": "https://not-a-real-url.example/in-token",
                            "page_age": None,
                        },
                    ],
                },
                {
                    "type": "web_fetch_tool_result",
                    "tool_use_id": "srvtoolu_2",
                    "content": {
                        "type": "web_fetch_result",
                        "url": "https://fetched.example/article",
                        "retrieved_at": None,
                        "content": {
                            "type": "document",
                            "title": "T",
                            "source": {
                                "type": "text",
                                "media_type": "text/plain",
                                "data": "Read more at https://linked.example/more.",
                            },
                        },
                    },
                },
                {
                    "type": "bash_code_execution_tool_result",
                    "tool_use_id": "srvtoolu_3",
                    "content": {
                        "type": "bash_code_execution_result",
                        "stdout": "https://printed.example/x",
                        "stderr": "",
                        "return_code": 0,
                        "content": [],
                    },
                },
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "lookup",
                    "input": {"url": "https://tool-input.example/"},
                },
            ],
        },
        user(
            {
                "type": "tool_result",
                "tool_use_id": "toolu_1",
                "content": [text("Found it at <https://client-tool.example/path_(x)>.")],
            },
            {"type": "document", "source": {"type": "url", "url": "https://files.example/report.pdf"}},
            {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "See http://doc-text.example"},
            },
            {
                "type": "document",
                "source": {"type": "content", "content": [text("Also www.content-doc.example/p.")]},
            },
            {"type": "image", "source": {"type": "url", "url": "https://images.example/cat.png"}},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "aGVsbG8=.example"},
            },
            {
                "type": "search_result",
                "source": "https://search-block.example/s",
                "title": "S",
                "content": [text("body")],
            },
            text("Plain example.org/plain-page and mail me at someone@mail.example, e.g. later."),
        ),
    ],
}


@pytest.mark.parametrize(
    "url",
    [
        "https://docs.example.com/guide?x=1",
        "http://DOCS.example.com:443/guide?x=1#other",
        "https://result.example/a",
        "https://result.example/a/",
        "https://fetched.example/article",
        "https://linked.example/more",
        "https://client-tool.example/path_(x)",
        "https://files.example/report.pdf",
        "http://doc-text.example/",
        "https://www.content-doc.example/p",
        "https://images.example/cat.png",
        "https://search-block.example/s",
        "https://example.org/plain-page",
    ],
)
def test_urls_the_conversation_showed(url: str) -> None:
    assert shown(url, PARAMS)


@pytest.mark.parametrize(
    "url",
    [
        "https://system.example/secret",  # the system prompt is not the conversation
        "https://invented.example/page",  # assistant text: the model's own words
        "https://printed.example/x",  # code execution output
        "https://tool-input.example/",  # the model's own tool input
        "https://not-a-real-url.example/in-token",  # inside an opaque token
        "https://docs.example.com/guide",  # another query
        "https://docs.example.com/guide?x=2",
        "https://docs.example.com:8443/guide?x=1",  # another port
        "https://mail.example/",  # an e-mail address is not a URL
        "https://result.example/a/b",
        "not a url",
    ],
)
def test_urls_it_did_not(url: str) -> None:
    assert not shown(url, PARAMS)


def test_find_urls_strips_sentence_punctuation() -> None:
    assert find_urls("See https://a.example/x. Or (https://b.example/y), or https://c.example/z_(1)!") == [
        "https://a.example/x",
        "https://b.example/y",
        "https://c.example/z_(1)",
    ]
    assert find_urls("version 3.14 and e.g. nothing") == []


def test_url_key() -> None:
    assert url_key("https://Example.COM") == url_key("http://example.com/") == "example.com"
    assert url_key("https://example.com:8080/a/?q=1#f") == "example.com:8080/a?q=1"
    assert url_key("http://[::1]:80/x") == "[::1]/x"
    assert url_key("https://bücher.example/") == "xn--bcher-kva.example"
    assert url_key("ftp://example.com/") is None
    assert url_key("http://example.com:99999/") is None


def test_odd_params_give_no_urls() -> None:
    assert urls_in_context({}) == set()
    assert urls_in_context({"messages": "nope"}) == set()
    assert (
        urls_in_context({"messages": [None, {"role": "assistant", "content": "https://a.example"}]}) == set()
    )
