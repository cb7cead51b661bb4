"""tools/web_fetch/context.py: URLs found in text, and the form two URLs compare in (web fetch's
rule that a URL must have appeared in the conversation; the loop walks the conversation)."""

from __future__ import annotations

import pytest

from batchd.tools.web_fetch.context import find_urls, url_key


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        (
            "Please read https://docs.example.com/guide?x=1#intro, then summarize.",
            ["https://docs.example.com/guide?x=1#intro"],
        ),
        ("Found it at <https://client-tool.example/path_(x)>.", ["https://client-tool.example/path_(x)"]),
        (
            "HTTP://Upper.example/A and http://127.0.0.1:8080/x",
            ["HTTP://Upper.example/A", "http://127.0.0.1:8080/x"],
        ),
        (
            "Plain example.org/plain-page and www.content-doc.example/p.",
            ["example.org/plain-page", "www.content-doc.example/p"],
        ),
        ("mail me at someone@mail.example, e.g. later; see /usr/lib.so", []),
        ('"https://q.example/a" `https://b.example/c`', ["https://q.example/a", "https://b.example/c"]),
    ],
)
def test_find_urls(text: str, urls: list[str]) -> None:
    assert find_urls(text) == urls


@pytest.mark.parametrize(
    ("written", "asked"),
    [
        ("https://docs.example.com/guide?x=1#intro", "http://DOCS.example.com:443/guide?x=1#other"),
        ("https://result.example/a", "https://result.example/a/"),
        ("example.org/plain-page", "https://example.org/plain-page"),
        ("www.content-doc.example/p", "https://www.content-doc.example/p"),
        ("http://doc-text.example", "http://doc-text.example/"),
    ],
)
def test_the_same_url_copied_differently(written: str, asked: str) -> None:
    assert url_key(written) == url_key(asked) is not None


@pytest.mark.parametrize(
    ("written", "asked"),
    [
        ("https://docs.example.com/guide?x=1", "https://docs.example.com/guide"),
        ("https://docs.example.com/guide?x=1", "https://docs.example.com/guide?x=2"),
        ("https://docs.example.com/guide", "https://docs.example.com:8443/guide"),
        ("https://result.example/a", "https://result.example/a/b"),
        ("https://a.example/", "https://b.example/"),
    ],
)
def test_different_urls(written: str, asked: str) -> None:
    assert url_key(written) != url_key(asked)


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
