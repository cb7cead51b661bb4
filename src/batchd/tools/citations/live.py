"""`cite` as the answer comes: the text blocks of a streamed answer, sent as soon as they are sure.

`Live.add(piece)` takes the model's next piece of text and says what can be sent now; `Live.end()`
the rest. What is sent adds up to `cite(whole text, sources)`, block for block, whatever the
pieces: the text is cited up to its *safe point* (`safe_point`) — before a quote tag still open
(`<cite …>` with no `</cite>` yet), before a tag still being written (`<ci`), and before trailing
blanks (which `cite` may join to the quote before them) — and each time that point moves past a
tag, the blocks of the safe text are compared with those sent: the last block sent is still open,
so its text may grow; a block after it ends it. Plain words after settled text are added without
citing it all again. Plain text therefore streams as it comes, and a quote follows as its own
block, with its citations, once its closing tag is in.

Ops, in order: `("start", block)` (a text block, empty, with `citations: []` when it has some),
`("citation", citation)`, `("text", piece)`, `("stop", None)`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from batchd.tools.citations import markup, sources
from batchd.tools.citations.blocks import cite

Op = tuple[str, Any]

# The start of a tag that more text could complete: `<`, `</`, `<ci`, `<citat`… (markup._TAG's name).
_PARTIAL = re.compile(r"<\s*/?\s*(?:c(?:i(?:t(?:e|a(?:t(?:i(?:on?)?)?)?)?)?)?)?\s*", re.IGNORECASE)


def safe_point(text: str, start: int = 0) -> int:
    """How much of `text` is cited as it will be whatever comes next: up to the end of its last
    stretch of words that is settled — plain words (their trailing blanks held back), or a quote
    with its closing tag. What follows is held: blanks (`cite` joins them to the block before a
    quote, to the next block before words), a quote whose closing tag is not in, a tag still being
    written. `start`: a safe point found before (the scan begins there; no tag is open at it)."""
    limit = len(text)
    opened: int | None = None  # where the last well-formed open tag begins, while it is unclosed
    for tag in markup._TAG.finditer(text, start):
        if not (tag.group("end") or tag.end() < len(text)):  # a tag still being written
            limit = tag.start()
            break
        opened = None if tag.group("close") else tag.start()
    if opened is not None:
        limit = min(limit, opened)
    last = text.rfind("<", start, limit)
    if last >= 0 and _PARTIAL.fullmatch(text, last, limit):
        limit = last
    point, at, quoting = start, start, False
    for tag in markup._TAG.finditer(text, start, limit):
        if text[at : tag.start()].strip():
            point = tag.end() if tag.group("close") and quoting else len(text[: tag.start()].rstrip())
        well_formed = bool(tag.group("end")) and not tag.group("attrs").rstrip().endswith("/")
        quoting = not tag.group("close") and well_formed
        at = tag.end()
    if text[at:limit].strip():
        point = len(text[:limit].rstrip())
    return point


class Live:
    """One text block of the model's, cited as it comes (module docstring)."""

    def __init__(self, cited: Sequence[sources.Source]) -> None:
        self.cited = cited
        self.text = ""
        self.sent: list[dict[str, Any]] = []  # the blocks sent; the last one is open
        self.point = 0
        self.broken = False  # the safe text's blocks no longer extend what was sent: wait for the end

    def add(self, piece: str) -> list[Op]:
        self.text += piece
        point = safe_point(self.text, self.point)
        if point <= self.point or self.broken:
            return []
        words, self.point = self.text[self.point : point], point
        if self.sent and "<" not in words:
            return self._words(words)
        return self._extend(self._blocks(self.text[:point]))

    def _words(self, words: str) -> list[Op]:
        """Plain words after settled text, without citing it all again: `cite` adds them to the
        last block when it has no citations, else they begin a block of their own."""
        last = self.sent[-1]
        if not last.get("citations"):
            last["text"] += words
            return [("text", words)]
        block = {"type": "text", "text": words}
        self.sent.append(block)
        return [("stop", None), *_start(block)]

    def end(self) -> list[Op]:
        ops = self._extend(self._blocks(self.text), final=True)
        if self.sent:
            ops.append(("stop", None))
        return ops

    def _blocks(self, text: str) -> list[dict[str, Any]]:
        return [b for b in cite(text, self.cited) if b.get("text")]

    def _extend(self, blocks: list[dict[str, Any]], final: bool = False) -> list[Op]:
        """The ops that take what was sent to `blocks`."""
        sent = self.sent
        fits = len(blocks) >= len(sent) and all(_same(a, b) for a, b in zip(sent[:-1], blocks, strict=False))
        if sent and fits:
            last, now = sent[-1], blocks[len(sent) - 1]
            fits = _cites(last) == _cites(now) and now["text"].startswith(last["text"])
        if not fits:
            self.broken = True  # never expected (tests/unit/tools/test_citations_live.py); stay correct
            if not final:
                return []
            return self._rest(blocks)
        ops: list[Op] = []
        if sent:
            last, now = sent[-1], blocks[len(sent) - 1]
            if len(now["text"]) > len(last["text"]):
                ops.append(("text", now["text"][len(last["text"]) :]))
                last["text"] = now["text"]
        for block in blocks[len(sent) :]:
            if self.sent:
                ops.append(("stop", None))
            ops.extend(_start(block))
            self.sent.append(dict(block))
        return ops

    def _rest(self, blocks: list[dict[str, Any]]) -> list[Op]:
        """After a mismatch: the blocks past those sent, whole (the open one ended as it is)."""
        ops: list[Op] = []
        for block in blocks[len(self.sent) :]:
            if self.sent:
                ops.append(("stop", None))
            ops.extend(_start(block))
            self.sent.append(dict(block))
        return ops


def _cites(block: dict[str, Any]) -> list[dict[str, Any]]:
    """A block's citations but for their `encrypted_index`, which is sealed with a fresh nonce each
    time a quote is cited."""
    return [{k: v for k, v in c.items() if k != "encrypted_index"} for c in block.get("citations") or ()]


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["text"] == b["text"] and _cites(a) == _cites(b)


def _start(block: dict[str, Any]) -> list[Op]:
    citations = block.get("citations")
    ops: list[Op] = [("start", {**block, "text": "", **({"citations": []} if citations else {})})]
    ops.extend(("citation", c) for c in citations or ())
    ops.append(("text", block["text"]))
    return ops
