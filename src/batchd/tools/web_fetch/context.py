"""The URLs a conversation has shown, for web fetch's rule that a URL must appear before it is fetched.

Anthropic's rule (spec §3): the URL must already be in the conversation — in user messages, in
client `tool_result`s, or in earlier web search / web fetch results; not a URL the model made up,
nor one printed by code execution. So this collects:

* every URL written in a user message: text, text documents, custom-content documents,
  `search_result` blocks, a document's or image's `url` source, and client `tool_result`s (which
  sit in user messages), at any depth;
* in assistant messages, only the results of server tools: each `web_search_result`'s `url`, each
  `web_fetch_result`'s `url` and the URLs written in its document's text;
* nothing from the system prompt, assistant text, or code execution output.

Matching forgives what a model changes when it copies a URL without changing where it leads: the
scheme (http/https), the case of the host, a default port, a fragment and a trailing slash. Plain
`example.com/page` in a user's text counts as well. `urls_in_context` returns the `url_key` of each
URL, so the loop asks `url_key(url) in urls_in_context(params)`.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

from batchd.tools import domains

# An absolute http(s) URL, or a bare host with a dot and a letters-only top-level label and an
# optional path; both end before whitespace, quotes or brackets.
_URL = re.compile(
    r"""https?://[^\s<>"'`\[\]{}|\\^]+"""
    r"""|(?<![\w@./-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}(?::\d{1,5})?(?:/[^\s<>"'`\[\]{}|\\^]*)?""",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?)'\"*_>"  # punctuation that ends a sentence, not a URL


def urls_in_context(params: Mapping[str, Any]) -> set[str]:
    """The `url_key`s of every URL the conversation in `params["messages"]` has shown (module doc)."""
    keys: set[str] = set()
    messages = params.get("messages")
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        texts = _user_texts(content) if message.get("role") == "user" else _result_texts(content)
        for text in texts:
            keys.update(key for url in find_urls(text) if (key := url_key(url)) is not None)
    return keys


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


def _user_texts(content: Any) -> Iterator[str]:
    """Every string in a user message's content, at any depth: URLs may sit in any field."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for item in content:
            yield from _user_texts(item)
    elif isinstance(content, dict):
        if content.get("type") == "base64":
            return  # an image's or a PDF's bytes: no URL to find, and megabytes to scan
        for key, value in content.items():
            if key not in ("type", "media_type", "cache_control", "id", "tool_use_id"):
                yield from _user_texts(value)


def _result_texts(content: Any) -> Iterator[str]:
    """In an assistant message, the URLs of web search and web fetch results, and fetched text."""
    if not isinstance(content, list):
        return
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        result = block.get("content")
        if kind == "web_search_tool_result" and isinstance(result, list):
            yield from (
                item["url"] for item in result if isinstance(item, dict) and isinstance(item.get("url"), str)
            )
        elif kind == "web_fetch_tool_result" and isinstance(result, dict):
            if isinstance(result.get("url"), str):
                yield result["url"]
            document = result.get("content")
            source = document.get("source") if isinstance(document, dict) else None
            if (
                isinstance(source, dict)
                and source.get("type") == "text"
                and isinstance(source.get("data"), str)
            ):
                yield source["data"]
