"""The markup a model quotes its sources with, the instructions that ask for it, and its parser.

The model is shown each source as `<source id="N" title="…">text</source>` and asked to quote with
`<cite source="N">exact words copied from source N</cite>`. Why this form, rather than `[N] "quote"`:
- Both ends of a quote are explicit. A quoted string's end is ambiguous as soon as the quote itself
  holds a quote mark or an apostrophe, and models mix straight and curly quotes; `</cite>` never
  occurs in a source by accident.
- It is the syntax of the sources themselves (`<source id="N">`), so a model sees the number it
  must name written the same way, and XML-like tags are among the most common markup in the text
  small open models learn from; they reproduce them more reliably than a convention of our own.
- Its failures are easy to detect and harmless: a tag not closed, closed twice, nested, cut off by
  `max_tokens` or naming no known source is removed and its words stay as plain text; `[1]` and
  quote marks in the answer are ordinary text and are left alone.

The parser is lenient about the tag (`<CITE source=1>`, `source='1'`, `<citation source="1">`,
`source="1, 2"` for a quote found in two sources) and strict about structure: only a well-formed
`<cite …>…</cite>` pair quotes. In `<cite source="1">a <cite source="2">b</cite> c</cite>` the
outer tag is never closed before the inner one opens, so "a " and " c" are plain and "b" quotes
source 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CITATION_INSTRUCTIONS = """\
Citing sources: the sources you may cite are given between <source id="N"> and </source> tags. \
When a sentence of your answer uses a source, copy the exact words you rely on from that source \
into a cite tag that names the source's id: <cite source="N">exact words copied from source N</cite>. \
Copy the words exactly as they are written in the source; do not change, shorten or translate them. \
Use one cite tag per quote, always close it with </cite>, and never put a cite tag inside another. \
Write the rest of your answer normally, outside the tags.
Example: The report found that <cite source="1">revenue grew by 12% in 2023</cite>, \
while <cite source="2">costs stayed flat</cite>."""

_NAME = r"cit(?:e|ation)\b"
# A tag ends at `>`; one without (`<cite source="1" words`) ends before the next `<` or at the end.
_TAG = re.compile(rf"<\s*(?P<close>/)?\s*{_NAME}(?P<attrs>[^<>]*)(?P<end>>|(?=<)|\Z)", re.IGNORECASE)
_ATTR = re.compile(
    r"""\b(?:sources?|src|ids?|refs?|doc(?:ument)?s?|index)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'/>]+))""",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d{1,9}")


@dataclass(frozen=True)
class Segment:
    """A stretch of the answer with its markup removed, and the (1-based) sources it says it
    quotes: () for plain text."""

    text: str
    sources: tuple[int, ...] = ()


def parse(text: str) -> list[Segment]:
    """The answer `text` as segments in order; their texts joined are `text` without its markup."""
    segments: list[Segment] = []
    at = 0
    opened: tuple[int, ...] | None = None  # the sources of the tag open at `at`, if one is
    for tag in _TAG.finditer(text):
        inner = text[at : tag.start()]
        at = tag.end()
        attrs = tag.group("attrs")
        well_formed = bool(tag.group("end")) and not attrs.rstrip().endswith("/")
        if tag.group("close"):
            segments.append(Segment(inner, opened or ()))
            opened = None
        else:
            segments.append(Segment(inner))  # plain text, or a tag left open: plain
            opened = _sources(attrs) if well_formed else None
    segments.append(Segment(text[at:]))
    return [s for s in segments if s.text]


def _sources(attrs: str) -> tuple[int, ...]:
    """The source numbers an opening tag names, in order, each once: `source="2"`, `src=2`,
    `source="1, 3"`, or a bare `<cite 2>`."""
    match = _ATTR.search(attrs)
    if match is not None:
        value = next(g for g in match.groups() if g is not None)
    elif not any(c.isalpha() for c in attrs):
        value = attrs
    else:
        return ()
    return tuple(dict.fromkeys(int(n) for n in _NUMBER.findall(value)))
