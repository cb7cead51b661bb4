"""The sources a model may quote: request documents with citations enabled, web search results and
fetched documents, each as one `Source` whose `text` is what the model is shown and quotes from."""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from batchd import exceptions
from batchd.backends import pdf

Kind = Literal["text", "pdf", "content", "web_search_result"]

#: Between the pages of a PDF and the blocks of a content document in `Source.text`: a paragraph
#: break, so that the model reads them apart and a quote never runs two words of them together.
SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Source:
    """One citable source. Build it with `plain`, `pdf`, `content` or `search_result`.

    `text` is what the model is shown (`prompt.render_source`) and the only text a quote is looked
    up in; every index a citation carries is an offset into it or into the parts it joins:
    - "text": a plain-text document; `text` is the document's `source.data`, unchanged.
    - "pdf": `page_texts` (one per page, in order) joined with `SEPARATOR`.
    - "content": `block_texts` (one per block of the custom content; "" for an image) joined
      with `SEPARATOR`.
    - "web_search_result": the page text of one search hit; `url` and `encrypted_index_for` set.
    `document_index` is set for documents (0-based over every `document` block of the request,
    cited or not); `context` is a document's `context`, shown to the model but never quoted.
    """

    kind: Kind
    text: str
    title: str | None = None
    document_index: int | None = None
    page_texts: tuple[str, ...] | None = None
    block_texts: tuple[str, ...] | None = None
    url: str | None = None
    #: (start, end) of the quoted span in `text` -> the citation's `encrypted_index`.
    encrypted_index_for: Callable[[int, int], str] | None = None
    context: str | None = None

    def __post_init__(self) -> None:
        pages, blocks = self.page_texts is not None, self.block_texts is not None
        if (pages, blocks) != (self.kind == "pdf", self.kind == "content"):
            raise ValueError("page_texts are a pdf source's, block_texts a content source's")
        if self.parts is not None and self.text != SEPARATOR.join(self.parts):
            raise ValueError("Source.text must be its parts joined with SEPARATOR")
        web = self.kind == "web_search_result"
        if web != (self.url is not None and self.encrypted_index_for is not None):
            raise ValueError("a web_search_result source, and only it, has a url and encrypted_index_for")
        if web == (self.document_index is not None):
            raise ValueError("a document source, and only it, has a document_index")

    @classmethod
    def plain(
        cls, text: str, *, document_index: int, title: str | None = None, context: str | None = None
    ) -> Source:
        return cls("text", text, title, document_index, context=context)

    @classmethod
    def pdf(
        cls,
        pages: Sequence[str],
        *,
        document_index: int,
        title: str | None = None,
        context: str | None = None,
    ) -> Source:
        pages = tuple(pages)
        return cls("pdf", SEPARATOR.join(pages), title, document_index, page_texts=pages, context=context)

    @classmethod
    def content(
        cls,
        blocks: Sequence[str],
        *,
        document_index: int,
        title: str | None = None,
        context: str | None = None,
    ) -> Source:
        blocks = tuple(blocks)
        return cls(
            "content", SEPARATOR.join(blocks), title, document_index, block_texts=blocks, context=context
        )

    @classmethod
    def search_result(
        cls, *, url: str, title: str | None, text: str, encrypted_index_for: Callable[[int, int], str]
    ) -> Source:
        return cls("web_search_result", text, title, url=url, encrypted_index_for=encrypted_index_for)

    @property
    def parts(self) -> tuple[str, ...] | None:
        """The pages of a PDF or the blocks of a content document; None for the other kinds."""
        return self.page_texts if self.kind == "pdf" else self.block_texts if self.kind == "content" else None

    def part_span(self, start: int, end: int) -> tuple[int, int]:
        """The parts (0-based, end exclusive) that `text[start:end]` (end > start) touches."""
        starts = _part_starts(self.parts or ())
        return bisect.bisect_right(starts, start) - 1, bisect.bisect_right(starts, end - 1)

    def parts_text(self, first: int, stop: int) -> str:
        """The text of parts `first` to `stop` (exclusive) as `text` joins them: a slice of `text`."""
        starts = _part_starts(self.parts or ())
        parts = self.parts or ()
        return self.text[starts[first] : starts[stop - 1] + len(parts[stop - 1])]


@functools.lru_cache(maxsize=64)
def _part_starts(parts: tuple[str, ...]) -> tuple[int, ...]:
    starts, at = [], 0
    for part in parts:
        starts.append(at)
        at += len(part) + len(SEPARATOR)
    return tuple(starts)


def document_slots(messages: Sequence[Any]) -> Iterator[tuple[int, str, list[Any], int]]:
    """(document_index, path, the list holding the block, its position there) for every
    `document` block of `messages`, in request order.

    `document_index` counts the document blocks of every message's content and of the content of
    every `tool_result` in it, where they appear. Documents inside a `web_fetch_tool_result` (an
    earlier answer sent back) are the loop's to number, not counted here.
    """
    index = 0
    for i, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for j, block in enumerate(content):
            path = f"messages.{i}.content.{j}"
            if block.get("type") == "document":
                yield index, path, content, j
                index += 1
            elif block.get("type") == "tool_result" and isinstance(block.get("content"), list):
                for k, inner in enumerate(block["content"]):
                    if inner.get("type") == "document":
                        yield index, f"{path}.content.{k}", block["content"], k
                        index += 1


def walk_documents(params: dict[str, Any]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(document_index, path, block) for every `document` block of `params` (see `document_slots`)."""
    for index, path, container, k in document_slots(params.get("messages") or ()):
        yield index, path, container[k]


def document_count(params: dict[str, Any]) -> int:
    """How many `document` blocks `params` holds: the next `document_index` (for a fetched document)."""
    return sum(1 for _ in walk_documents(params))


def citations_enabled(block: dict[str, Any]) -> bool:
    citations = block.get("citations")
    return isinstance(citations, dict) and citations.get("enabled") is True


def document_source(block: dict[str, Any], document_index: int, path: str = "document") -> Source | None:
    """The Source for a `document` block (a request's, or the one a web fetch returns), or None when
    batchd cannot read its text (a `url` or `file` source). Raises `exceptions.InvalidParams`,
    naming `path`, for a PDF that cannot be read."""
    source = block.get("source") or {}
    kind = source.get("type")
    title = block.get("title") if isinstance(block.get("title"), str) else None
    context = block.get("context") if isinstance(block.get("context"), str) else None
    if kind == "text":
        data = str(source.get("data", ""))
        return Source.plain(data, document_index=document_index, title=title, context=context)
    if kind == "base64" and source.get("media_type") == "application/pdf":
        try:
            pages = pdf.extract_pages(str(source.get("data", "")))
        except exceptions.InvalidParams as exc:
            raise exceptions.InvalidParams(f"{path}.source: {exc.message}") from exc
        return Source.pdf(pages, document_index=document_index, title=title, context=context)
    if kind == "content":
        content = source.get("content")
        if isinstance(content, str):
            texts = [content]
        else:
            texts = [str(b.get("text", "")) if b.get("type") == "text" else "" for b in content or ()]
        return Source.content(texts, document_index=document_index, title=title, context=context)
    return None


def sources_from_params(params: dict[str, Any]) -> list[Source]:
    """The request's documents with `citations.enabled`, as Sources in request order.

    Documents batchd cannot read (`url`, `file` sources) are left out; so are documents without
    citations enabled, which still count in `document_index`.
    """
    sources = []
    for index, path, block in walk_documents(params):
        if citations_enabled(block):
            found = document_source(block, index, path)
            if found is not None:
                sources.append(found)
    return sources
