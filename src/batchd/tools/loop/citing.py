"""The loop's one door to citations (`tools/citations`): sources shown numbered, answers cited.

Every source the model may quote — a request document with `citations.enabled`, a web search
hit, a fetched document whose tool enables citations — is numbered from 1 in one list per request
(request documents first, then results in the order the conversation holds them) and shown to the
model as `<source id="N" title="…">text</source>`; `cite()` then turns the answer's quotes into
Anthropic's citations, checking each quote against its source. A quote not found verbatim is not
cited: the text stays, uncited.

`tools/citations` is written alongside the loop; until it is present, nothing is cited and the
sources are shown without the instructions to quote them (the answer stays plain text).
"""

from __future__ import annotations

import html
import importlib
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any


def _module() -> ModuleType | None:
    try:
        return importlib.import_module("batchd.tools.citations")
    except ModuleNotFoundError as exc:
        if exc.name not in ("batchd.tools.citations",):
            raise
        return None


_citations = _module()
AVAILABLE = _citations is not None


def instructions() -> str:
    """The text added to the system prompt when a request has citable sources ("" without citations)."""
    return str(getattr(_citations, "CITATION_INSTRUCTIONS", "")) if _citations else ""


def request_sources(params: dict[str, Any]) -> list[Any]:
    """The request's documents with citations enabled, as `citations.Source`s in request order."""
    if _citations is None:
        return []
    found: list[Any] = _citations.sources_from_params(params)
    return found


def search_source(url: str, title: str | None, text: str, index_for: Callable[[int, int], str]) -> Any:
    """A citable web search hit, or None without citations."""
    if _citations is None:
        return None
    return _citations.Source.search_result(url=url, title=title, text=text, encrypted_index_for=index_for)


def fetched_source(document: dict[str, Any], document_index: int) -> Any:
    """A citable fetched `document` block, or None without citations (or for an unreadable one)."""
    if _citations is None:
        return None
    return _citations.document_source(document, document_index)


def render(number: int | None, title: str | None, text: str) -> str:
    """How source `number` (1-based; None: not citable) is shown to the model."""
    if number is None:
        return f"{title}\n{text}" if title else text
    label = f' title="{html.escape(title, quote=True)}"' if title else ""
    return f'<source id="{number}"{label}>\n{text}\n</source>'


def cite(text: str, sources: Sequence[Any]) -> list[dict[str, Any]]:
    """The answer's text as text blocks, quotes cited (exact indices) and markup removed."""
    if _citations is None or not sources:
        return [{"type": "text", "text": text}]
    blocks: list[dict[str, Any]] = _citations.cite(text, sources)
    return blocks
