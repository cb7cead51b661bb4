"""`allowed_domains` / `blocked_domains` of web search and web fetch: one place for the rules.

The rules (Anthropic's web search and web fetch docs, spec §1.7):

* a tool takes `allowed_domains` or `blocked_domains`, never both (400 invalid_request_error);
* an entry is a bare domain, no scheme and no port: `example.com`. It covers that host and every
  host under it, so `example.com` covers `docs.example.com`, while `docs.example.com` covers only
  itself (and hosts under it), never `example.com` or `api.example.com`;
* web search also takes a path: `example.com/blog` matches `example.com/blog` and anything below it
  (`/blog/post-1`), on segment boundaries (not `/blogger`). `*` stands for any run of characters,
  and is allowed only in the path (`example.com/*`, `example.com/*/articles`), never in the host
  (`*.example.com`, `ex*.com`);
* web fetch matches on the domain only: an entry with a path never matches a fetch URL (so it
  allows nothing, and blocks nothing);
* anything else (a scheme, a port, a query, spaces, an empty label…) is a 400 at request time.

Hosts compare case-insensitively and in their IDNA (punycode) form, so `bücher.example` and
`xn--bcher-kva.example` are one host; the docs advise ASCII-only entries against homographs.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

from batchd import exceptions
from batchd.params import checks as params_checks

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_MAX_HOST = 253  # characters, RFC 1035


@dataclass(frozen=True)
class Rule:
    """One parsed filter entry: a host and, for web search, a path pattern."""

    host: str  # lower-case, IDNA-encoded
    path: re.Pattern[str] | None  # None: the whole domain


def check_filters(allowed: Sequence[str] | None, blocked: Sequence[str] | None, *, tool: str) -> None:
    """Check one tool definition's filters, as the API does at request time.

    `tool` is where the definition sits in the params (`tools.2.web_fetch_20250910`), so the error
    names the field the way params validation does. Raises `exceptions.InvalidParams` (400
    invalid_request_error) when both lists are given or an entry is malformed.
    """
    try:
        if allowed is not None and blocked is not None:
            raise params_checks.Invalid(
                "cannot be combined with allowed_domains; set at most one of them", "blocked_domains"
            )
        for key, entries in (("allowed_domains", allowed), ("blocked_domains", blocked)):
            if entries is None:
                continue
            if isinstance(entries, str) or not isinstance(entries, Sequence):
                raise params_checks.Invalid(params_checks.NOT_LIST, key)
            for i, entry in enumerate(entries):
                if type(entry) is not str:
                    raise params_checks.Invalid(params_checks.NOT_STR, key, i)
                try:
                    parse(entry)
                except params_checks.Invalid as exc:
                    raise exc.under(key, i) from None
    except params_checks.Invalid as exc:
        prefix = [part for part in tool.split(".") if part]
        raise exceptions.InvalidParams(exc.under(*prefix).render()) from None


def search_allows(url: str, allowed: Sequence[str], blocked: Sequence[str]) -> bool:
    """Whether a web search hit at `url` passes the filters (domain and path prefix)."""
    return _allows(url, allowed, blocked, paths=True)


def fetch_allows(url: str, allowed: Sequence[str], blocked: Sequence[str]) -> bool:
    """Whether web fetch may fetch `url` under the filters (domain only)."""
    return _allows(url, allowed, blocked, paths=False)


@functools.lru_cache(maxsize=1024)
def parse(entry: str) -> Rule:
    """One entry -> Rule; raises `params_checks.Invalid` (no location) when it is malformed."""
    if not entry:
        raise params_checks.Invalid("a domain may not be empty")
    if "://" in entry:
        raise params_checks.Invalid(f"{entry!r}: give a bare domain without a scheme (example.com)")
    if any(c.isspace() for c in entry) or "?" in entry or "#" in entry:
        raise params_checks.Invalid(f"{entry!r}: a domain has no spaces, query or fragment")
    host, slash, path = entry.partition("/")
    if "*" in host:
        raise params_checks.Invalid(f"{entry!r}: '*' is allowed only in the path, not in the domain")
    return Rule(_host(host, entry), _path_pattern("/" + path) if slash else None)


def _host(host: str, entry: str) -> str:
    if ":" in host:
        raise params_checks.Invalid(f"{entry!r}: a domain has no port")
    name = host_name(host)
    if name is None:
        raise params_checks.Invalid(f"{entry!r} is not a valid domain name")
    return name


def host_name(text: str) -> str | None:
    """`text` as a host name in normal form (`normal_host`) when it is a valid one, else None."""
    name = normal_host(text)
    if name is None or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        return None
    return name


def normal_host(host: str) -> str | None:
    """A host name in the form filters compare: lower case, IDNA, no trailing dot; None if invalid."""
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if not host or len(host) > _MAX_HOST:
        return None
    return host


def _path_pattern(path: str) -> re.Pattern[str]:
    # A path entry matches its own path and what lies below it: after the pattern the URL's path
    # ends or a new segment starts, unless the pattern itself ends at a boundary (`/` or `*`).
    body = ".*".join(re.escape(part) for part in path.split("*"))
    tail = "" if path.endswith(("/", "*")) else "(?:/|$)"
    return re.compile(body + tail)


def _matches(rule: Rule, host: str, path: str, *, paths: bool) -> bool:
    if host != rule.host and not host.endswith("." + rule.host):
        return False
    if rule.path is None:
        return True
    # Web fetch matches on the domain only: an entry with a path never matches it.
    return paths and rule.path.match(path or "/") is not None


def _allows(url: str, allowed: Sequence[str], blocked: Sequence[str], *, paths: bool) -> bool:
    if not allowed and not blocked:
        return True
    try:
        parts = urllib.parse.urlsplit(url)
        host = normal_host(parts.hostname or "")
    except ValueError:
        host = None
    if host is None:
        return False  # no host to match: never let it through a filter
    try:
        hit = any(_matches(parse(entry), host, parts.path, paths=paths) for entry in (allowed or blocked))
    except (params_checks.Invalid, TypeError):
        return False  # a list that skipped check_filters: refuse rather than guess
    return hit if allowed else not hit
