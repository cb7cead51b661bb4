"""The local web search provider: the index builder (folders, JSONL, HTML), BM25 search, snippets,
domain filters and its failures; `batchd index build` on the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from batchd.tools.errors import ToolError
from batchd.tools.web_search import index
from batchd.tools.web_search.base import SearchQuery
from batchd.tools.web_search.local import FULL_TEXT_CHARS, LocalProvider


def doc(url: str, title: str, text: str, page_age: str | None = None) -> dict[str, str | None]:
    return {"url": url, "title": title, "text": text, "page_age": page_age}


DOCS = [
    doc("https://llamas.example/herds", "Llama herds", "Llamas live in herds and hum softly.", "May 1, 2025"),
    doc("https://docs.llamas.example/care", "Caring for llamas", "Brush a llama weekly."),
    doc("https://camelids.example/blog/alpacas", "Alpacas", "Alpacas are smaller than llamas."),
    doc("https://camelids.example/news/1", "Camel news", "Camels cross deserts; llamas do not."),
    doc("https://long.example/", "A long page", ("Filler words here. " * 300) + "Vicuñas are wild."),
]


@pytest.fixture
def provider(tmp_path: Path) -> LocalProvider:
    source = tmp_path / "docs.jsonl"
    source.write_bytes(b"\n".join(orjson.dumps(d) for d in DOCS) + b"\n")
    assert index.build(index.read_source(source), tmp_path / "idx.db") == len(DOCS)
    return LocalProvider(str(tmp_path / "idx.db"))


async def search(provider: LocalProvider, query: str, **kw: object) -> list[str]:
    return [h.url for h in await provider.search(SearchQuery(query, **kw))]  # type: ignore[arg-type]


async def test_bm25_ranks_titles_and_more_words_first(provider: LocalProvider) -> None:
    urls = await search(provider, "llama herds")
    assert urls[0] == "https://llamas.example/herds"
    assert set(urls) >= {"https://docs.llamas.example/care", "https://camelids.example/blog/alpacas"}
    assert await search(provider, "zebra") == []
    assert len(await search(provider, "llamas", max_results=2)) == 2
    await provider.aclose()


async def test_hits_carry_text_page_age_and_passages_of_long_pages(provider: LocalProvider) -> None:
    [hit] = await provider.search(SearchQuery("hum softly", max_results=1))
    assert (hit.title, hit.text, hit.page_age) == (
        "Llama herds",
        "Llamas live in herds and hum softly.",
        "May 1, 2025",
    )
    [long] = await provider.search(SearchQuery("vicuñas", max_results=1))
    assert long.url == "https://long.example/" and "Vicuñas are wild." in long.text
    assert len(long.text) < FULL_TEXT_CHARS
    [folded] = await provider.search(SearchQuery("vicunas", max_results=1))  # diacritics folded
    assert folded.url == long.url
    await provider.aclose()


async def test_domain_filters(provider: LocalProvider) -> None:
    allowed = await search(provider, "llamas", allowed_domains=("llamas.example",))
    assert sorted(allowed) == ["https://docs.llamas.example/care", "https://llamas.example/herds"]
    assert await search(provider, "llamas", allowed_domains=("camelids.example/blog",)) == [
        "https://camelids.example/blog/alpacas"
    ]
    blocked = await search(provider, "llamas", blocked_domains=("llamas.example",))
    assert blocked and not any("llamas.example" in u for u in blocked)
    await provider.aclose()


async def test_failures_are_tool_errors(provider: LocalProvider, tmp_path: Path) -> None:
    for bad, code in (("x" * 1001, "query_too_long"), ("  ?! ", "invalid_tool_input")):
        with pytest.raises(ToolError) as caught:
            await provider.search(SearchQuery(bad))
        assert caught.value.error_code == code
    for path in ("", str(tmp_path / "missing.db"), str(tmp_path / "docs.jsonl")):
        unconfigured = LocalProvider(path)
        with pytest.raises(ToolError) as caught:
            await unconfigured.search(SearchQuery("llamas"))
        assert caught.value.error_code == "unavailable"
        assert await unconfigured.health() is not None
    assert await provider.health() is None
    await provider.aclose()


def test_folder_of_text_markdown_and_html(tmp_path: Path) -> None:
    folder = tmp_path / "site"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("Plain title\n\nPlain body about otters.")
    (folder / "sub" / "b.md").write_text("# Markdown title\n\nBody about beavers.")
    (folder / "c.html").write_text(
        "<html><head><title>Html &amp; title</title><style>p{color:red}</style></head>"
        "<body><script>var hidden = 1;</script><p>First para</p>"
        "<p>Second&nbsp;para about voles.</p></body></html>"
    )
    (folder / "ignored.bin").write_bytes(b"\x00")
    docs = {d.title: d for d in index.read_folder(folder, "https://site.example/base/")}
    assert set(docs) == {"Plain title", "Markdown title", "Html & title"}
    html = docs["Html & title"]
    assert html.text == "First para\n\nSecond\xa0para about voles." and "hidden" not in html.text
    assert docs["Markdown title"].url == "https://site.example/base/sub/b.md"
    assert docs["Plain title"].page_age is not None
    local = next(iter(index.read_folder(folder)))
    assert local.url.startswith("file:///")


def test_bad_jsonl_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text('{"url": "u", "title": "t"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: text must be a string"):
        list(index.read_source(source))


def test_index_build_command(tmp_path: Path) -> None:
    source = tmp_path / "docs.jsonl"
    source.write_bytes(b"\n".join(orjson.dumps(d) for d in DOCS))
    out = tmp_path / "nested" / "idx.db"
    done = subprocess.run(
        [sys.executable, "-m", "batchd", "index", "build", str(source), "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"indexed {len(DOCS)} documents into {out}" in done.stdout
    assert out.is_file() and not list(out.parent.glob(".*tmp"))
    missing = subprocess.run(
        [sys.executable, "-m", "batchd", "index", "build", str(tmp_path / "bad.jsonl"), "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert missing.returncode == 2


async def test_words_in_most_documents_are_dropped_and_big_matches_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchd.tools.web_search import local

    docs = [
        index.Document(f"https://e.example/{i}", f"Page {i}", f"common words here {i}") for i in range(40)
    ]
    docs.append(index.Document("https://e.example/rare", "Rare", "common words and a rare otter"))
    index.build(docs, tmp_path / "idx.db")
    monkeypatch.setattr(local, "COMMON_MIN", 0)
    provider = LocalProvider(str(tmp_path / "idx.db"))
    # "common" is in every document: dropped, so only the otter page matches.
    assert await search(provider, "common otter") == ["https://e.example/rare"]
    # Every word common: the rarest is kept ("words" and "common" tie; one of them is searched).
    assert len(await search(provider, "common words", max_results=5)) == 5
    assert await search(provider, "unknownword") == []
    monkeypatch.setattr(local, "CANDIDATES", 3)  # rank among the first 3 matches only
    assert len(await search(provider, "common", max_results=5)) == 3
    await provider.aclose()


async def test_pages_holding_every_word_are_found_when_or_matches_too_many(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OR ranks only its first CANDIDATES matches; the one page with both words comes last in the
    index, so it is found only because pages holding every word are ranked first."""
    from batchd.tools.web_search import local

    monkeypatch.setattr(local, "CANDIDATES", 10)
    docs = [doc(f"https://a.example/{i}", "A page", f"Alpaca number {i}.") for i in range(20)]
    docs += [doc(f"https://b.example/{i}", "B page", f"Beluga number {i}.") for i in range(20)]
    docs.append(doc("https://both.example/", "Both", "An alpaca met a beluga."))
    source = tmp_path / "docs.jsonl"
    source.write_bytes(b"\n".join(orjson.dumps(d) for d in docs) + b"\n")
    index.build(index.read_source(source), tmp_path / "idx.db")
    provider = LocalProvider(str(tmp_path / "idx.db"))
    urls = await search(provider, "alpaca beluga", max_results=5)
    assert urls[0] == "https://both.example/"
    assert len(urls) == 5  # and OR fills the rest
    assert await search(provider, "alpaca beluga", max_results=1) == ["https://both.example/"]
    await provider.aclose()
