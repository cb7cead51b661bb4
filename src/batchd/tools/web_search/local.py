"""The `local` provider (the default): BM25 search of an index built by `batchd index build`.

No service to run and no network: the index is one SQLite FTS5 file (`index.py`), read through
read-only connections, one per worker thread. A query's words are matched with OR and ranked by
BM25 (titles weigh more), so a page holding more of the words ranks higher. The text a hit gives
the model is the page itself when it is short, else the passages around the matched words.

Speed: FTS5 ranks every document that matches, so a word found in most documents ("the", "news")
would make a query rank most of the corpus while adding next to nothing to BM25. Words found in
more than COMMON of the documents (and more than COMMON_MIN) are dropped (all but the rarest, when
every word is that common); when the words left may match more than CANDIDATES documents, the
pages holding all of them are ranked first (AND) and OR is tried only when they are too few; and an
OR that matches more than CANDIDATES documents ranks the best among its first CANDIDATES matches.
The read connections map the file into memory and keep a large page cache.

Domain filters: `allowed_domains` narrow the SQL to the allowed hosts (and the hosts under them);
every hit then passes `domains.search_allows`, which also applies paths and `blocked_domains`.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

from batchd.tools import domains
from batchd.tools.errors import ToolError
from batchd.tools.web_search.base import SearchHit, SearchQuery

MAX_QUERY_CHARS = 1000  # longer queries are `query_too_long`
MAX_QUERY_TERMS = 32  # words of a query searched for; later ones are dropped
FULL_TEXT_CHARS = 2000  # pages up to this long are given whole; longer ones as passages
SNIPPET_TOKENS = 48  # words per passage (FTS5 allows 64 at most)
SCAN_LIMIT = 2000  # candidates examined at most when filters reject hits
COMMON = 0.05  # a word in more than this share of the documents is dropped from a query…
COMMON_MIN = 5_000  # …if it is in more documents than this (ranking a small corpus is cheap anyway)
CANDIDATES = 4_000  # matches ranked at most per query
MMAP_BYTES = 1 << 30  # of the index file mapped into memory, per connection (address space only)
CACHE_KIB = 65_536  # SQLite page cache per connection
_WORD = re.compile(r"\w+", re.UNICODE)


class LocalProvider:
    """Searches the index file `path` ("" when none is configured: every search is `unavailable`)."""

    name = "local"

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._has_df = False  # the index holds term document counts (set on first connection)
        self._documents = 0

    async def search(self, q: SearchQuery) -> list[SearchHit]:
        if len(q.query) > MAX_QUERY_CHARS:
            raise ToolError("query_too_long", f"the query is longer than {MAX_QUERY_CHARS} characters")
        terms = list(dict.fromkeys(w.lower() for w in _WORD.findall(q.query)))[:MAX_QUERY_TERMS]
        if not terms:
            raise ToolError("invalid_tool_input", "the query has no words to search for")
        return await asyncio.to_thread(self.search_now, q, terms)

    def search_now(self, q: SearchQuery, terms: list[str]) -> list[SearchHit]:
        """The search itself, on the calling thread."""
        conn = self._connection()
        try:
            words, matches = self._selective(conn, terms)
            if not words:
                return []
            quoted = ['"' + t.replace('"', '""') + '"' for t in words]
            hits: list[SearchHit] = []
            if len(quoted) > 1 and matches > CANDIDATES:
                # OR would rank only its first CANDIDATES matches; the pages holding every word
                # are fewer and rank first under BM25 anyway, so rank them all before falling back.
                hits = self._scan(conn, q, " AND ".join(quoted), matches, [])
            if len(hits) < q.max_results:
                hits = self._scan(conn, q, " OR ".join(quoted), matches, hits)
        except sqlite3.Error as exc:
            raise ToolError(
                "unavailable", f"the local index {self.path} could not be searched: {exc}"
            ) from exc
        return hits

    def _scan(
        self, conn: sqlite3.Connection, q: SearchQuery, match: str, matches: int, hits: list[SearchHit]
    ) -> list[SearchHit]:
        """`hits` followed by the best pages for `match` that the filters allow, up to max_results."""
        where, args = "fts MATCH ?", [match]
        if q.allowed_domains:
            hosts = {domains.parse(entry).host for entry in q.allowed_domains}
            where += " AND (" + " OR ".join("d.host = ? OR d.host LIKE ?" for _ in hosts) + ")"
            for host in sorted(hosts):
                args += [host, "%." + host]
        source = "fts JOIN docs d ON d.id = fts.rowid" if q.allowed_domains else "fts"  # hosts: in docs
        ranked = f"SELECT fts.rowid FROM {source} WHERE {where}"
        if matches > CANDIDATES:  # rank the first CANDIDATES matches only
            ranked = (
                f"SELECT rowid FROM (SELECT fts.rowid AS rowid, rank FROM {source} "
                f"WHERE {where} LIMIT {CANDIDATES}) ORDER BY rank LIMIT ? OFFSET ?"
            )
        else:
            ranked += " ORDER BY rank LIMIT ? OFFSET ?"
        hits = list(hits)
        seen = {hit.url for hit in hits}
        page = max(q.max_results * 2, 10)
        offset = 0
        while len(hits) < q.max_results and offset < SCAN_LIMIT:
            ids = [row[0] for row in conn.execute(ranked, [*args, page, offset])]
            for row in self._rows(conn, match, ids):
                if row[0] not in seen and domains.search_allows(row[0], q.allowed_domains, q.blocked_domains):
                    seen.add(row[0])
                    hits.append(_hit(row))
                    if len(hits) == q.max_results:
                        break
            if len(ids) < page:
                break
            offset += page
        return hits

    def _selective(self, conn: sqlite3.Connection, words: list[str]) -> tuple[list[str], int]:
        """The query's words worth matching, and how many documents they may match at most."""
        if not self._has_df:
            return words, 0  # an index built before the df table: every word, unbounded
        conn.execute("DELETE FROM temp.query")
        conn.executemany("INSERT INTO temp.query (rowid, x) VALUES (?, ?)", enumerate(words))
        stems = dict(conn.execute("SELECT doc, term FROM temp.query_terms"))
        marks = ",".join("?" * len(stems))
        df = dict(conn.execute(f"SELECT term, doc FROM df WHERE term IN ({marks})", list(stems.values())))
        counted = [(df.get(stems.get(i, ""), 0), w) for i, w in enumerate(words)]
        known = [(n, w) for n, w in counted if n > 0]
        if not known:
            return [], 0
        common = max(COMMON * self._documents, COMMON_MIN)
        kept = [(n, w) for n, w in known if n <= common] or [min(known)]
        return [w for _, w in kept], sum(n for n, _ in kept)

    def _rows(self, conn: sqlite3.Connection, match: str, ids: list[int]) -> list[Any]:
        """url, title, text, page_age and passages of documents `ids`, in that order."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = conn.execute(
            "SELECT fts.rowid, d.url, d.title, d.text, d.page_age, "
            f"snippet(fts, 1, '', '', ' … ', {SNIPPET_TOKENS}) FROM fts JOIN docs d ON d.id = fts.rowid "
            f"WHERE fts MATCH ? AND fts.rowid IN ({marks})",
            [match, *ids],
        ).fetchall()
        by_id = {row[0]: row[1:] for row in rows}
        return [by_id[i] for i in ids if i in by_id]

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if not self.path:
                raise ToolError("unavailable", "no local search index is configured ([web_search] index)")
            if not Path(self.path).is_file():
                raise ToolError("unavailable", f"the local search index {self.path} does not exist")
            try:
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
                # Pages read through a memory map and kept in a large cache: a query reads the
                # doclists of its words, which for a common word span many pages.
                conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
                conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
                conn.execute("SELECT 1 FROM fts LIMIT 0")
                tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
                self._has_df = "df" in tables
                if self._has_df:
                    # The query is split into terms by the index's own tokenizer (stems), whose
                    # document counts are then looked up in `df`.
                    conn.executescript(
                        """
                        CREATE VIRTUAL TABLE temp.query USING fts5(
                            x, tokenize = 'porter unicode61 remove_diacritics 2'
                        );
                        CREATE VIRTUAL TABLE temp.query_terms USING fts5vocab(temp, query, 'instance');
                        """
                    )
                    self._documents = conn.execute("SELECT count(*) FROM docs").fetchone()[0]
            except sqlite3.Error as exc:
                raise ToolError("unavailable", f"{self.path} is not a search index: {exc}") from exc
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def health(self) -> str | None:
        try:
            await asyncio.to_thread(self._connection)
        except ToolError as exc:
            return exc.message
        return None

    async def aclose(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()


def _hit(row: Any) -> SearchHit:
    url, title, text, page_age, snippet = row
    return SearchHit(url, title, text if len(text) <= FULL_TEXT_CHARS else snippet, page_age)
