"""A fetched body -> the document web fetch returns: HTML as readable text, text as is, PDF by page.

HTML goes through trafilatura (a maintained main-content extractor: it drops navigation, scripts
and boilerplate, keeps headings, paragraphs, lists and tables as plain lines). Measured here on
Python 3.11: importing it costs ~0.13 s once (it is imported on first use), extracting a 16 KB
page ~5 ms and a 2 MB page ~1.3 s of CPU, which is why the fetcher runs this module in a worker
thread. A page trafilatura finds no main content in (a very short one) falls back to all of its
text. The title is the page's `<title>`, else what trafilatura's metadata finds.

PDFs go through the project's PDF text path (backends/pdf.py, pypdf): the text of each page for
`page_location` citations, and the PDF itself, base64, for the document block.

`max_content_tokens` truncation counts a token as 4 characters (the usual average for English
text): the text keeps its first `4 × max_content_tokens` characters, cut back to the last
whitespace when there is one in the final tenth. It does not apply to PDFs, as the spec says.
"""

from __future__ import annotations

import base64
import codecs
import io
import re
from dataclasses import dataclass

from batchd import exceptions
from batchd.backends import pdf
from batchd.tools.errors import ToolError

CHARS_PER_TOKEN = 4  # for max_content_tokens: an approximate token, as the spec allows
PAGE_SEPARATOR = "\n\n"  # between the pages of a PDF in `text`, as tools/citations joins them

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
PDF_TYPE = "application/pdf"
_SNIFF = 1024  # bytes looked at when the server names no useful type
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S)


@dataclass(frozen=True)
class Extracted:
    """What a body holds, before the fetcher adds the URL and the time."""

    media_type: str  # "text/plain" (HTML converted) | "application/pdf"
    title: str | None
    text: str
    pdf_base64: str | None = None
    page_texts: tuple[str, ...] | None = None


def kind_of(content_type: str | None, head: bytes) -> str | None:
    """ "html", "text" or "pdf" for a response's Content-Type (or its first bytes), else None."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in HTML_TYPES:
        return "html"
    if mime == PDF_TYPE:
        return "pdf"
    if mime.startswith("text/"):
        return "text"
    if mime in ("", "application/octet-stream", "binary/octet-stream"):
        # No type, or "some bytes": what the bytes themselves say.
        if head.startswith(b"%PDF-"):
            return "pdf"
        if _HTML_START.match(head[:_SNIFF]):
            return "html"
        if mime == "" and _looks_textual(head[:_SNIFF]):
            return "text"
    return None


def charset_of(content_type: str | None) -> str | None:
    """The `charset` parameter of a Content-Type, if Python knows it."""
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            name = value.strip().strip("\"'")
            try:
                return codecs.lookup(name).name
            except LookupError:
                return None
    return None


def extract(kind: str, body: bytes, charset: str | None, max_content_tokens: int | None) -> Extracted:
    """The document of a `kind_of` body. CPU-bound: the fetcher calls it in a worker thread."""
    if kind == "pdf":
        return _pdf(body)
    if kind == "html":
        title, text = _html(body, charset)
    else:
        title, text = None, body.decode(charset or "utf-8", "replace")
    return Extracted("text/plain", title, truncate(text, max_content_tokens))


def truncate(text: str, max_content_tokens: int | None) -> str:
    """`text` cut to about `max_content_tokens` tokens (CHARS_PER_TOKEN characters each)."""
    if max_content_tokens is None:
        return text
    limit = max(0, max_content_tokens) * CHARS_PER_TOKEN
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    if space >= limit - limit // 10 and space > 0:
        cut = cut[:space]
    return cut.rstrip()


def _html(body: bytes, charset: str | None) -> tuple[str | None, str]:
    import trafilatura  # imported on first use: ~0.13 s, paid by the first fetch only
    from trafilatura import utils as trafilatura_utils

    # A declared charset decodes the page; without one trafilatura detects it (meta tag, sniffing).
    source: str | bytes = body.decode(charset, "replace") if charset else body
    tree = trafilatura_utils.load_html(source)
    if tree is None:
        return None, ""
    title = " ".join((tree.findtext(".//title") or "").split()) or None
    if title is None:
        metadata = trafilatura.extract_metadata(tree)
        title = metadata.title if metadata is not None and metadata.title else None
    text = trafilatura.extract(tree)
    if not text:
        # No main content found (a very short page): all of its text. extract() pruned `tree`.
        text = trafilatura.html2txt(source)
    return title, _tidy(text or "")


def _tidy(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _pdf(body: bytes) -> Extracted:
    data = base64.b64encode(body).decode("ascii")
    try:
        pages = pdf.extract_pages(data)
    except exceptions.InvalidParams as exc:
        raise ToolError("url_not_accessible", f"the PDF could not be read: {exc.message}") from exc
    return Extracted(
        PDF_TYPE, _pdf_title(body), PAGE_SEPARATOR.join(pages), pdf_base64=data, page_texts=pages
    )


def _pdf_title(body: bytes) -> str | None:
    try:
        import pypdf

        metadata = pypdf.PdfReader(io.BytesIO(body)).metadata
        title = metadata.title if metadata is not None else None
    except Exception:  # pypdf raises many types for odd files; the title is optional
        return None
    return " ".join(title.split()) or None if isinstance(title, str) else None


def _looks_textual(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut at the end of the sample
    return True
