"""URLs in text, and the form two URLs compare in: web fetch's rule that a URL must appear first.

Anthropic's rule (spec §3): the URL must already be in the conversation — in user messages, in
client `tool_result`s, or in earlier web search / web fetch results; not a URL the model made up,
nor one printed by code execution. The loop walks the conversation (tools/loop/history.py) and
notes the URLs `find_urls` finds in those places; a fetch passes when `url_key(url)` is the key of
one of them.

Matching forgives what a model changes when it copies a URL without changing where it leads: the
scheme (http/https), the case of the host, a default port, a fragment and a trailing slash. A plain
`example.com/page` in the text counts as well (an address needs its scheme: `127.0.0.1/x` does not).
"""

from __future__ import annotations

import re
import urllib.parse

from batchd.tools import domains

# An absolute http(s) URL, or a bare host with a dot and a letters-only top-level label and an
# optional path; both end before whitespace, quotes or brackets.
_URL = re.compile(
    r"""https?://[^\s<>"'`\[\]{}|\\^]+"""
    r"""|(?<![\w@./-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}(?::\d{1,5})?(?:/[^\s<>"'`\[\]{}|\\^]*)?""",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?)'\"*_>"  # punctuation that ends a sentence, not a URL


def find_urls(text: str) -> list[str]:
    """The URLs written in `text`, trailing sentence punctuation removed."""
    found = []
    for match in _URL.finditer(text):
        url = match.group(0)
        while url and url[-1] in _TRAILING:
            # A closing parenthesis belongs to the URL when it closes one opened inside it.
            if url[-1] == ")" and url.count("(") >= url.count(")"):
                break
            url = url[:-1]
        if url:
            found.append(url)
    return found


def url_key(url: str) -> str | None:
    """The form two URLs compare in: host (lower case, IDNA), port unless default, path, query."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urllib.parse.urlsplit(text)
        host = domains.normal_host(parts.hostname or "")
        port = parts.port
    except ValueError:
        return None
    if host is None or parts.scheme.lower() not in ("http", "https"):
        return None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal, written as in a URL
    netloc = host if port in (None, 80, 443) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return netloc + path + (f"?{parts.query}" if parts.query else "")
