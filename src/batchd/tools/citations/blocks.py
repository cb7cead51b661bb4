"""The model's answer, with its quote markup, as Anthropic's text blocks with exact citations."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from batchd.tools.citations import markup, search, sources

#: The longest `cited_text` of a `web_search_result_location` (Anthropic's bound).
WEB_CITED_TEXT_MAX = 150


def cite(text: str, cited: Sequence[sources.Source]) -> list[dict[str, Any]]:
    """The answer `text` as text blocks: each quote found in a source it names is a block of its
    own with `citations`, the text around it uncited blocks.

    A quote names its sources by number, `cited[number - 1]`. It is cited by each of them it is
    found in (see `search.locate`); found in none, or naming no source of `cited`, its words stay,
    uncited. The texts of the blocks joined are `text` without its markup, which never shows.
    There are no empty blocks, and no blank ones (Anthropic refuses a blank text block sent back
    in a later turn): blank text between two quotes joins the quote before it. An answer that is
    blank without its markup gives [].
    """
    pieces: list[tuple[str, list[dict[str, Any]]]] = []
    for segment in markup.parse(text):
        found: list[dict[str, Any]] = []
        if not segment.text.isspace():
            for number in segment.sources:
                if 1 <= number <= len(cited):
                    citation = citation_for(segment.text, cited[number - 1])
                    if citation is not None:
                        found.append(citation)
        if found or not pieces or pieces[-1][1]:
            pieces.append((segment.text, found))
        else:
            pieces[-1] = (pieces[-1][0] + segment.text, [])
    return _blocks(pieces)


def _blocks(pieces: list[tuple[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    carry = ""  # blank text with no block before it, for the next block
    for text, citations in pieces:
        if not citations and text.isspace():
            if blocks:
                blocks[-1]["text"] += text
            else:
                carry += text
            continue
        block: dict[str, Any] = {"type": "text", "text": carry + text}
        if citations:
            block["citations"] = citations
        blocks.append(block)
        carry = ""
    return blocks


def citation_for(quote: str, source: sources.Source) -> dict[str, Any] | None:
    """The citation of `quote` in `source`, or None when `source` does not hold it."""
    span = search.locate(quote, source.text)
    if span is None:
        return None
    start, end = span
    if source.kind == "web_search_result":
        assert source.url is not None and source.encrypted_index_for is not None  # Source checks it
        return {
            "type": "web_search_result_location",
            "cited_text": _clip(source.text, start, end),
            "url": source.url,
            "title": source.title,
            "encrypted_index": source.encrypted_index_for(start, end),
        }
    base = {"cited_text": source.text[start:end], "document_index": source.document_index}
    base |= {"document_title": source.title, "file_id": None}
    if source.kind == "text":
        return {"type": "char_location", **base, "start_char_index": start, "end_char_index": end}
    first, stop = source.part_span(start, end)
    if source.kind == "pdf":
        return {"type": "page_location", **base, "start_page_number": first + 1, "end_page_number": stop + 1}
    base["cited_text"] = source.parts_text(first, stop)
    return {"type": "content_block_location", **base, "start_block_index": first, "end_block_index": stop}


def _clip(text: str, start: int, end: int) -> str:
    """text[start:end], cut to WEB_CITED_TEXT_MAX characters and never inside a combining sequence."""
    stop = min(end, start + WEB_CITED_TEXT_MAX)
    while start + 1 < stop < end and unicodedata.category(text[stop]).startswith("M"):
        stop -= 1
    return text[start:stop]
