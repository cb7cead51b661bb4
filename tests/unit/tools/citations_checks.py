"""The contract every answer `citations.cite` gives must keep, checked by the tests that call it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import anthropic.types

from batchd.tools import citations
from batchd.tools.citations import Source, search

MARKUP = re.compile(r"<\s*/?\s*cit(e|ation)\b", re.IGNORECASE)


def checked_cite(text: str, sources: Sequence[Source]) -> list[dict[str, Any]]:
    """`citations.cite(text, sources)`, having checked its blocks: text blocks with neither
    markup nor blank text, of the SDK's shape, each citation's cited text the source's own."""
    blocks = citations.cite(text, sources)
    for block in blocks:
        assert block["type"] == "text" and block["text"].strip(), block
        assert not MARKUP.search(block["text"]), block
        anthropic.types.TextBlock.model_validate(block)  # every field the SDK requires
        for citation in block.get("citations", ()):
            located = assert_true_substring(citation, sources)
            assert_same_words(
                block["text"], located, whole_blocks=citation["type"] == "content_block_location"
            )
    return blocks


def assert_same_words(quote: str, located: str, *, whole_blocks: bool = False) -> None:
    """The source text a quote was located at holds the quote's words, folded as the search folds
    them: exactly (less the punctuation around it), or its elided pieces in order from end to end.
    A content document's citation names whole blocks, which hold the words somewhere."""
    key = search.fold(quote).text.strip()
    got = search.fold(located).text.strip()
    bare = key.strip(search.EDGES)
    if got in (key, bare) or (whole_blocks and bare in got):
        return
    pieces = [p.strip(search.EDGES) for p in search.ELISION.split(bare)]
    assert len(pieces) > 1, (quote, located)
    at = 0
    for piece in pieces:
        found = got.find(piece, at)
        assert found >= 0 and (whole_blocks or at or found == 0), (quote, located)
        at = found + len(piece)
    assert whole_blocks or at == len(got), (quote, located)


def assert_true_substring(citation: dict[str, Any], sources: Sequence[Source]) -> str:
    """`cited_text` is the source's text at the citation's indices (for web results: a prefix of
    the text at the span handed to `encrypted_index_for`, which the tests encode as "start:end").
    Returns the whole text located (for web results, not cut to 150 characters)."""
    kind = citation["type"]
    if kind == "web_search_result_location":
        source = next(s for s in sources if s.url == citation["url"])
        start, end = map(int, citation["encrypted_index"].split(":"))
        assert source.text[start:end].startswith(citation["cited_text"])
        assert 0 < len(citation["cited_text"]) <= 150
        return source.text[start:end]
    source = next(s for s in sources if s.document_index == citation["document_index"])
    assert citation["document_title"] == source.title
    if kind == "char_location":
        start, end = citation["start_char_index"], citation["end_char_index"]
        assert 0 <= start < end <= len(source.text)
        assert source.text[start:end] == citation["cited_text"]
        return str(citation["cited_text"])
    elif kind == "page_location":
        pages = source.page_texts or ()
        first, stop = citation["start_page_number"], citation["end_page_number"]
        assert 1 <= first < stop <= len(pages) + 1
        within = "\n\n".join(pages[first - 1 : stop - 1])
        last_starts = len(within) - len(pages[stop - 2])
        cited = citation["cited_text"]
        # It starts on the first page named and ends on the last.
        assert any(
            within.startswith(cited, at) and at + len(cited) > last_starts
            for at in range(min(len(pages[first - 1]), len(within)))
        )
        return cited
    else:
        blocks = source.block_texts or ()
        first, stop = citation["start_block_index"], citation["end_block_index"]
        assert 0 <= first < stop <= len(blocks)
        assert citation["cited_text"] == "\n\n".join(blocks[first:stop])
        return str(citation["cited_text"])
