"""tools/domains.py: the allowed_domains / blocked_domains rules of spec §1.7."""

from __future__ import annotations

import pytest

from batchd import exceptions
from batchd.tools import domains

TOOL = "tools.0.web_search_20250305"


@pytest.mark.parametrize(
    ("entry", "url", "expected"),
    [
        # A bare domain covers itself and its subdomains, case-insensitively.
        ("example.com", "https://example.com/", True),
        ("example.com", "https://docs.example.com/a", True),
        ("example.com", "http://a.b.example.com:8080/x?q=1", True),
        ("example.com", "https://EXAMPLE.com/", True),
        ("Example.COM", "https://example.com/", True),
        ("example.com", "https://example.com./", True),
        ("example.com", "https://notexample.com/", False),
        ("example.com", "https://example.com.evil.net/", False),
        ("example.com", "https://example.org/", False),
        # A specific subdomain covers only itself (and hosts under it).
        ("docs.example.com", "https://docs.example.com/x", True),
        ("docs.example.com", "https://v2.docs.example.com/x", True),
        ("docs.example.com", "https://example.com/x", False),
        ("docs.example.com", "https://api.example.com/x", False),
        # Paths: a prefix on segment boundaries.
        ("example.com/blog", "https://example.com/blog", True),
        ("example.com/blog", "https://example.com/blog/", True),
        ("example.com/blog", "https://example.com/blog/post-1", True),
        ("example.com/blog", "https://docs.example.com/blog/post-1", True),
        ("example.com/blog", "https://example.com/blogger", False),
        ("example.com/blog", "https://example.com/other/blog", False),
        ("example.com/blog", "https://example.com/", False),
        ("example.com/blog/", "https://example.com/blog/x", True),
        ("example.com/blog/", "https://example.com/blog", False),
        # `*` in the path: any run of characters.
        ("example.com/*", "https://example.com/anything", True),
        ("example.com/*", "https://example.com/", True),
        ("example.com/*/articles", "https://example.com/en/articles", True),
        ("example.com/*/articles", "https://example.com/en/articles/x", True),
        ("example.com/*/articles", "https://example.com/en/us/articles/x", True),
        ("example.com/*/articles", "https://example.com/en/news", False),
        ("example.com/*/articles", "https://example.com/en/articlesx", False),
        ("example.com/a.b", "https://example.com/aXb", False),  # dots in paths are literal
        # Internationalised names compare in their IDNA form.
        ("bücher.example", "https://xn--bcher-kva.example/", True),
        ("xn--bcher-kva.example", "https://bücher.example/", True),
    ],
)
def test_search_matching(entry: str, url: str, expected: bool) -> None:
    domains.check_filters([entry], None, tool=TOOL)
    assert domains.search_allows(url, (entry,), ()) is expected
    assert domains.search_allows(url, (), (entry,)) is not expected


@pytest.mark.parametrize(
    ("entry", "url", "expected"),
    [
        ("example.com", "https://example.com/blog/x", True),
        ("example.com", "https://docs.example.com/", True),
        ("docs.example.com", "https://example.com/", False),
        ("example.com", "https://example.org/", False),
    ],
)
def test_fetch_matches_on_the_domain(entry: str, url: str, expected: bool) -> None:
    assert domains.fetch_allows(url, (entry,), ()) is expected
    assert domains.fetch_allows(url, (), (entry,)) is not expected


def test_fetch_never_matches_an_entry_with_a_path() -> None:
    url = "https://example.com/blog/post-1"
    for entry in ("example.com/blog", "example.com/*", "example.com/"):
        assert domains.search_allows(url, (entry,), ())
        assert not domains.fetch_allows(url, (entry,), ())  # allows nothing
        assert domains.fetch_allows(url, (), (entry,))  # blocks nothing
    assert domains.fetch_allows(url, ("example.com/blog", "example.com"), ())


def test_no_filters_allow_everything_and_several_entries_combine() -> None:
    assert domains.search_allows("https://anything.test/x", (), ())
    assert domains.fetch_allows("https://anything.test/x", (), ())
    allowed = ("a.test", "b.test/docs")
    assert domains.search_allows("https://a.test/x", allowed, ())
    assert domains.search_allows("https://b.test/docs/1", allowed, ())
    assert not domains.search_allows("https://b.test/blog", allowed, ())
    assert not domains.search_allows("https://c.test/", allowed, ())
    blocked = ("a.test", "b.test/docs")
    assert not domains.search_allows("https://a.test/x", (), blocked)
    assert not domains.search_allows("https://b.test/docs/1", (), blocked)
    assert domains.search_allows("https://b.test/blog", (), blocked)


@pytest.mark.parametrize("url", ["not a url", "https:///nohost", "mailto:someone@example.com", "http://[::1"])
def test_a_url_without_a_host_never_passes_a_filter(url: str) -> None:
    assert not domains.search_allows(url, ("example.com",), ())
    assert not domains.search_allows(url, (), ("example.com",))
    assert not domains.fetch_allows(url, (), ("example.com",))


def test_a_list_that_skipped_the_check_refuses_rather_than_guesses() -> None:
    assert not domains.search_allows("https://example.com/", ("https://example.com",), ())
    assert not domains.fetch_allows("https://example.com/", (), ("*.example.com",))


@pytest.mark.parametrize(
    "entry",
    [
        "example.com",
        "docs.example.com",
        "example.co.uk",
        "localhost",
        "EXAMPLE.COM",
        "example.com.",
        "a-b.example.com",
        "xn--bcher-kva.example",
        "bücher.example",
        "example.com/blog",
        "example.com/",
        "example.com/*",
        "example.com/*/articles",
        "example.com/*/news/*",
        "127.0.0.1",
    ],
)
def test_valid_entries(entry: str) -> None:
    domains.check_filters([entry], None, tool=TOOL)
    domains.check_filters(None, [entry], tool=TOOL)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("https://example.com", "without a scheme"),
        ("http://example.com/blog", "without a scheme"),
        ("*.example.com", "only in the path"),
        ("ex*.com", "only in the path"),
        ("*", "only in the path"),
        ("example.com:8080", "no port"),
        ("", "may not be empty"),
        (" example.com", "no spaces"),
        ("example .com", "no spaces"),
        ("example.com/a?b", "query"),
        ("example.com#top", "fragment"),
        (".example.com", "not a valid domain"),
        ("example..com", "not a valid domain"),
        ("-example.com", "not a valid domain"),
        ("example-.com", "not a valid domain"),
        ("exa_mple.com", "not a valid domain"),
        ("/blog", "not a valid domain"),
        ("a" * 64 + ".com", "not a valid domain"),
        (".".join(["a" * 60] * 5), "not a valid domain"),
        ("user@example.com", "not a valid domain"),
    ],
)
def test_invalid_entries_are_a_located_400(entry: str, message: str) -> None:
    for key, args in (("allowed_domains", ([entry], None)), ("blocked_domains", (None, ["ok.test", entry]))):
        with pytest.raises(exceptions.InvalidParams) as info:
            domains.check_filters(*args, tool=TOOL)
        index = 0 if key == "allowed_domains" else 1
        assert str(info.value).startswith(f"{TOOL}.{key}.{index}: ")
        assert message in str(info.value)
        assert info.value.status == 400 and info.value.error_type == "invalid_request_error"


def test_both_lists_are_a_400_even_when_empty() -> None:
    with pytest.raises(exceptions.InvalidParams) as info:
        domains.check_filters(["a.test"], ["b.test"], tool="tools.3.web_fetch_20250910")
    assert str(info.value).startswith("tools.3.web_fetch_20250910.blocked_domains: cannot be combined")
    with pytest.raises(exceptions.InvalidParams):
        domains.check_filters([], [], tool=TOOL)
    domains.check_filters([], None, tool=TOOL)
    domains.check_filters(None, None, tool=TOOL)


@pytest.mark.parametrize(
    ("allowed", "message"),
    [
        ("example.com", "valid list"),
        ([3], "valid string"),
        ([["a"]], "valid string"),
        ({"a": 1}, "valid list"),
    ],
)
def test_wrong_types_are_a_400(allowed: object, message: str) -> None:
    with pytest.raises(exceptions.InvalidParams, match=message):
        domains.check_filters(allowed, None, tool=TOOL)  # type: ignore[arg-type]
