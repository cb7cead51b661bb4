"""Where a quote is in a source: a search that forgives how models copy text, and answers only with
offsets of the source's own text.

Both the source and the quote are *folded* before the search, and every folded character remembers
the span of source text it came from, so a match maps back to exact offsets of the original text:
whatever folding did, the cited text is `source.text[start:end]`, a true substring. Folding:
- every run of whitespace (spaces, tabs, CR, LF, CRLF, no-break spaces) becomes one space;
- NFKC, then case folding (`É` and `é`, `ﬁ` and `fi`, full-width and ASCII letters match);
  a combining mark is folded with the character it follows, so a decomposed `é` (e + U+0301)
  matches a composed one;
- curly and straight quotes, and the dashes `‐ ‑ ‒ – — ― −` and `-`, match each other;
- soft hyphens and zero-width characters are ignored.
A match must start and end on whole source characters and on word edges (in scripts with letter
case, so that "cat" is not found inside "concatenate"; scripts written without spaces, such as
Chinese or Thai, match anywhere). The first match in the source wins.

If the quote is not found as written, it is tried without the quote marks, brackets and
punctuation around it; then, if it elides text with `...` or `…`, as its pieces in order, each
at most ELISION_GAP folded characters after the one before, citing the span from the first
piece to the last. Anything else (a paraphrase, a changed word, a different order) is not found.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from array import array
from dataclasses import dataclass

#: The most folded characters an elision (`...`) may stand for between two pieces of a quote.
ELISION_GAP = 300
#: Tried off a quote's ends when it is not found as written.
EDGES = " \"'.,;:!?()[]{}«»*_"

# Printable ASCII and lone spaces, tabs or newlines between it fold character for character (a
# lone tab or newline to a space): one token, for speed.
_TOKEN = re.compile(r"(?P<ascii>[!-~]+(?:[ \t\n][!-~]+)*)|(?P<space>\s+)|(?P<other>.)", re.DOTALL)
_LONE_SPACES = str.maketrans("\t\n", "  ")
ELISION = re.compile(r"\s*(?:\[\s*\.\.\.\s*\]|\(\s*\.\.\.\s*\)|\.\.\.)\s*")
_PUNCTUATION = str.maketrans(
    {
        **dict.fromkeys("‘’‚‛′´", "'"),
        **dict.fromkeys("“”„‟″«»", '"'),
        **dict.fromkeys("‐‑‒–—―−", "-"),
        **dict.fromkeys("\u00ad\u200b\u200c\u200d\u2060\ufeff"),  # soft hyphen, zero-width
    }
)


@dataclass(frozen=True)
class Folded:
    """Folded text, and for each of its characters the span of original text it stands for."""

    text: str
    starts: array[int]
    ends: array[int]


@functools.lru_cache(maxsize=4096)
def _fold_cluster(cluster: str) -> str:
    return unicodedata.normalize("NFKC", cluster.translate(_PUNCTUATION)).casefold()


def fold(text: str) -> Folded:
    """`text` folded for the search (see the module docstring), with the map back to `text`."""
    pieces: list[str] = []
    starts: array[int] = array("q")
    ends: array[int] = array("q")
    last = 0  # folded characters of the last cluster, which a combining mark joins; 0: none
    for match in _TOKEN.finditer(text):
        a, b = match.span()
        kind = match.lastgroup
        if kind == "space":
            if pieces and pieces[-1].endswith(" "):
                ends[-1] = b
            else:
                pieces.append(" ")
                starts.append(a)
                ends.append(b)
            last = 0
        elif kind == "ascii":
            pieces.append(match.group().lower().translate(_LONE_SPACES))
            starts.extend(range(a, b))
            ends.extend(range(a + 1, b + 1))
            last = 1
        else:
            if last and unicodedata.category(text[a]).startswith("M"):
                a = starts[-1]  # a combining mark: fold it with the character before it
                _drop(pieces, last)
                del starts[-last:]
                del ends[-last:]
            folded = _fold_cluster(text[a:b])
            if folded:
                pieces.append(folded)
                starts.extend([a] * len(folded))
                ends.extend([b] * len(folded))
            last = len(folded)
    return Folded("".join(pieces), starts, ends)


def _drop(pieces: list[str], count: int) -> None:
    while count:
        piece = pieces.pop()
        if len(piece) > count:
            pieces.append(piece[:-count])
            return
        count -= len(piece)


@functools.lru_cache(maxsize=8)
def _folded_source(text: str) -> Folded:
    """One source's index, kept: a batch often asks many questions of one document."""
    return fold(text)


def locate(quote: str, text: str) -> tuple[int, int] | None:
    """The span (start, end; 0-based, end exclusive) of `text` that `quote` copies, or None."""
    source = _folded_source(text)
    key = fold(quote).text.strip()
    if not any(c.isalnum() for c in key):
        return None  # punctuation alone quotes nothing
    for candidate in (key, key.strip(EDGES)):
        if candidate:
            found = _find(source, candidate, 0, len(source.text))
            if found is not None:
                return source.starts[found[0]], source.ends[found[1] - 1]
    pieces = [p.strip(EDGES) for p in ELISION.split(key.strip(EDGES))]
    if len(pieces) > 1 and all(pieces):
        return _find_elided(source, pieces)
    return None


def _find(source: Folded, key: str, begin: int, stop: int) -> tuple[int, int] | None:
    """The first (i, j) in source.text[begin:stop] equal to `key` on whole characters and word edges."""
    text = source.text
    i = text.find(key, begin, stop)
    while i >= 0:
        j = i + len(key)
        if _edge(source, i) and _edge(source, j):
            return i, j
        i = text.find(key, i + 1, stop)
    return None


def _edge(source: Folded, at: int) -> bool:
    """Whether a match may start or end at folded offset `at`: between two source characters, and
    not between two letters or digits of a cased script."""
    text, starts = source.text, source.starts
    if at in (0, len(text)):
        return True
    return starts[at - 1] != starts[at] and not (_wordy(text[at - 1]) and _wordy(text[at]))


def _wordy(char: str) -> bool:
    return char.isdigit() or (char.isalpha() and char.upper() != char.lower())


def _find_elided(source: Folded, pieces: list[str]) -> tuple[int, int] | None:
    first = _find(source, pieces[0], 0, len(source.text))
    while first is not None:
        at = first[1]
        for piece in pieces[1:]:
            nxt = _find(source, piece, at, min(len(source.text), at + ELISION_GAP + len(piece)))
            if nxt is None:
                break
            at = nxt[1]
        else:
            return source.starts[first[0]], source.ends[at - 1]
        first = _find(source, pieces[0], first[0] + 1, len(source.text))
    return None
