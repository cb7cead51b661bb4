"""`batchd index build SOURCE --out FILE`: the local search provider's index, an SQLite FTS5 file.

SOURCE is a folder (every `.txt`, `.md`, `.markdown`, `.html` and `.htm` file under it, HTML
reduced to its text) or a JSONL file of `{"url", "title", "text", "page_age"?}` objects. A folder's
documents get `file://` URLs, or `--base-url` followed by their path under the folder; their title
is the HTML `<title>`, the first Markdown heading or the first line; their `page_age` the file's
modification date.

The file holds a `docs` table (url, host, title, text, page_age), a `df` table (each indexed
term's document count) and an external-content FTS5
table over title and text (Porter stemming over `unicode61`, diacritics folded), ranked by BM25
with titles weighing 5 × the text. It is written to a temporary file and renamed into place, so
a server reading the old index never sees half a new one.
"""

from __future__ import annotations

import dataclasses
import datetime
import html.parser
import os
import re
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

SCHEMA_VERSION = "1"
FILE_TYPES = {".txt": "text", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}
TITLE_WEIGHT = 5.0  # BM25 weight of a title match against one in the text
_SKIPPED = frozenset({"script", "style", "noscript", "template", "svg", "head"})
_BLOCKS = frozenset(
    {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section",
     "article", "header", "footer", "pre", "blockquote", "hr", "dt", "dd", "main", "nav", "aside"}
)  # fmt: skip
_SPACES = re.compile(r"[ \t\r\f\v]+")
_LINES = re.compile(r"\n\s*\n\s*(\n\s*)+")


@dataclasses.dataclass(frozen=True)
class Document:
    url: str
    title: str
    text: str
    page_age: str | None = None


class _Text(html.parser.HTMLParser):
    """The readable text of an HTML page and its <title>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIPPED:
            self._skip += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _SKIPPED:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._skip:
            self.parts.append(data)


def html_text(markup: str) -> tuple[str | None, str]:
    """(title, text) of an HTML page: scripts, styles and tags gone, paragraphs kept apart."""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    title = " ".join("".join(parser.title).split()) or None
    return title, tidy("".join(parser.parts))


def tidy(text: str) -> str:
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _LINES.sub("\n\n", "\n".join(lines)).strip()


def page_age(timestamp: float) -> str:
    day = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return f"{day:%B} {day.day}, {day.year}"


def read_folder(root: Path, base_url: str | None = None) -> Iterator[Document]:
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in FILE_TYPES):
        raw = path.read_text(errors="replace")
        kind = FILE_TYPES[path.suffix.lower()]
        title: str | None = None
        if kind == "html":
            title, text = html_text(raw)
        else:
            text = tidy(raw)
            first = next((line.strip() for line in text.splitlines() if line.strip()), "")
            title = first.lstrip("#").strip() if kind == "markdown" else first
        relative = path.relative_to(root).as_posix()
        if base_url:
            url = base_url.rstrip("/") + "/" + urllib.parse.quote(relative)
        else:
            url = path.resolve().as_uri()
        yield Document(url, (title or path.stem)[:200], text, page_age(path.stat().st_mtime))


def read_jsonl(path: Path) -> Iterator[Document]:
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON: {exc}") from None
            if not isinstance(item, dict):
                raise ValueError(f"{path}:{number}: expected an object with url, title and text")
            for key in ("url", "title", "text"):
                if not isinstance(item.get(key), str):
                    raise ValueError(f"{path}:{number}: {key} must be a string")
            age = item.get("page_age")
            if age is not None and not isinstance(age, str):
                raise ValueError(f"{path}:{number}: page_age must be a string or absent")
            yield Document(item["url"], item["title"], item["text"], age)


def read_source(source: Path, base_url: str | None = None) -> Iterator[Document]:
    if source.is_dir():
        return read_folder(source, base_url)
    if source.is_file():
        return read_jsonl(source)
    raise ValueError(f"{source}: no such file or folder")


def host_of(url: str) -> str:
    try:
        return (urllib.parse.urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def build(documents: Iterable[Document], out: Path) -> int:
    """Write the index of `documents` to `out` (replacing it atomically); the number indexed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE docs (
                id INTEGER PRIMARY KEY, url TEXT NOT NULL, host TEXT NOT NULL,
                title TEXT NOT NULL, text TEXT NOT NULL, page_age TEXT
            );
            CREATE VIRTUAL TABLE fts USING fts5(
                title, text, content = 'docs', content_rowid = 'id',
                tokenize = 'porter unicode61 remove_diacritics 2'
            );
            """
        )
        count = 0
        rows = ((d.url, host_of(d.url), d.title, d.text, d.page_age) for d in documents)
        while chunk := [row for _, row in zip(range(5000), rows, strict=False)]:
            conn.executemany(
                "INSERT INTO docs (url, host, title, text, page_age) VALUES (?, ?, ?, ?, ?)", chunk
            )
            count += len(chunk)
        conn.execute("INSERT INTO fts (fts) VALUES ('rebuild')")
        conn.execute("INSERT INTO fts (fts, rank) VALUES ('rank', ?)", (f"bm25({TITLE_WEIGHT}, 1.0)",))
        conn.execute("INSERT INTO fts (fts) VALUES ('optimize')")
        # Each term's document count: the search drops words found in most documents (see local.py).
        conn.executescript(
            """
            CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, fts, 'row');
            CREATE TABLE df (term TEXT PRIMARY KEY, doc INTEGER NOT NULL) WITHOUT ROWID;
            INSERT INTO df SELECT term, doc FROM temp.vocab;
            DROP TABLE temp.vocab;
            """
        )
        conn.execute("CREATE INDEX docs_host ON docs (host)")
        built = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("schema", SCHEMA_VERSION), ("documents", str(count)), ("built_at", built)],
        )
        conn.commit()
    finally:
        conn.close()
    os.replace(tmp, out)
    return count
