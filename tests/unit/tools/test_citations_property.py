"""For any answer and any sources: every citation `cite` gives is the source's own text at its
indices, no markup shows, no words are lost, and a quote of a whole source is always cited."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchd.tools.citations import Source
from tests.unit.tools.citations_checks import checked_cite

# Text as models and documents write it: ASCII, accents composed and not, ligatures, CJK, astral
# characters, curly quotes, dashes, odd whitespace, CRLF, soft hyphens and zero-width characters.
ALPHABET = st.sampled_from(
    [
        *"abcdefghij ABC 0123 .,;:!?'\"-()",
        *("é", "e\u0301", "ß", "ﬁ", "Ｆ", "東京", "🚀", "𝔘", "’", "“", "”", "—", "…", "\u00ad", "\u200b"),
        *("\u00a0", "\t", "\n", "\r\n", "\u0301", "İ", "ǅ", " the cat ", " sat "),
    ]
)
TEXT = st.lists(ALPHABET, max_size=40).map("".join)


@st.composite
def a_source(draw: st.DrawFn, index: int) -> Source:
    kind = draw(st.sampled_from(["text", "pdf", "content", "web"]))
    if kind == "text":
        return Source.plain(draw(TEXT), document_index=index, title=draw(st.none() | TEXT))
    if kind == "web":
        url = f"https://s{index}.example/"
        return Source.search_result(
            url=url, title="T", text=draw(TEXT), encrypted_index_for=lambda a, b: f"{a}:{b}"
        )
    parts = draw(st.lists(TEXT, min_size=1, max_size=4))
    make = Source.pdf if kind == "pdf" else Source.content
    return make(parts, document_index=index)


@st.composite
def a_case(draw: st.DrawFn) -> tuple[list[Source], str, str, list[int]]:
    """Sources, an answer quoting them (rightly, wrongly, malformed), the answer's visible text,
    and the positions of its quotes of a whole source (which must be cited)."""
    count = draw(st.integers(0, 3))
    sources = [draw(a_source(i)) for i in range(count)]
    answer, visible, whole = "", "", []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["plain", "quote", "whole", "unclosed", "stray", "nested"]))
        number = draw(st.integers(0, count + 1))
        if kind in ("quote", "whole") and 1 <= number <= count:
            text = sources[number - 1].text
            if kind == "whole":
                words = text
            else:
                a, b = sorted((draw(st.integers(0, len(text))), draw(st.integers(0, len(text)))))
                words = text[a:b]
        else:
            words = draw(TEXT)
        tag = f'<cite source="{number}">'
        if kind == "plain":
            answer += words
        elif kind == "unclosed":
            answer += tag + words  # closed, if ever, by a later tag: still never shown
        elif kind == "stray":
            answer += words + "</cite>"
        elif kind == "nested":
            answer += f"{tag}{words}{tag}{words}</cite></cite>"
            words += words
        else:
            if kind == "whole" and 1 <= number <= count and any(c.isalnum() for c in words):
                whole.append(len(visible))
            answer += f"{tag}{words}</cite>"
        visible += words
    return sources, answer, visible, whole


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(a_case())
def test_every_citation_is_the_sources_own_text(case: tuple[list[Source], str, str, list[int]]) -> None:
    sources, answer, visible, whole = case
    blocks = checked_cite(answer, sources)  # checks each citation against its source
    joined = "".join(b["text"] for b in blocks)
    assert joined == (visible if visible.strip() else "")
    cited_at = _cited_offsets(blocks)
    for at in whole:
        assert any(a <= at < b or a == at for a, b in cited_at), (answer, at)


def _cited_offsets(blocks: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(start, end) in the joined text of each cited block (a block may begin with carried blanks)."""
    spans, at = [], 0
    for block in blocks:
        if "citations" in block:
            spans.append((at, at + len(block["text"])))
        at += len(block["text"])
    return spans
