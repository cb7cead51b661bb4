"""Content blocks for the simulator's citations, web search and code execution."""

from __future__ import annotations

import re
from typing import Any

from batchd.backends.simulator import text as sim_text

SEARCH_HOST = "https://search.batchd.invalid"
# Fixed, so that one request always gives one message.
CONTAINER_EXPIRES_AT = "2099-01-01T00:00:00Z"
LEGACY_CODE_EXECUTION = "code_execution_20250522"  # later versions answer through bash

_SENTENCE = re.compile(r"[^\s.!?][^.!?\n]*[.!?]*")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
)  # fmt: skip
_SECTIONS = ("news", "guides", "reference", "articles", "blog", "docs")
_TITLE_TAILS = (
    "A Practical Overview",
    "What You Need to Know",
    "Latest Updates",
    "Frequently Asked Questions",
    "A Short Guide",
    "Key Facts",
)
_SNIPPET_LEADS = (
    "{topic} matters because ",
    "Sources on {query} note that ",
    "According to recent coverage of {query}, ",
    "A review of {query} found that ",
)


# -- citations -------------------------------------------------------------------------


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of the sentences of `text`, preferring those of 3+ words."""
    spans = [m.span() for m in _SENTENCE.finditer(text) if m.group().strip()]
    long = [s for s in spans if text.count(" ", s[0], s[1]) >= 2]
    return long or spans


def document_citations(
    index: int, doc: dict[str, Any], pages: tuple[str, ...] | None, rng: sim_text.Rng
) -> list[dict[str, Any]]:
    """Text blocks quoting document `index` with the right kind of citation, or []."""
    title = doc.get("title") if isinstance(doc.get("title"), str) else None
    base = {"document_index": index, "document_title": title, "file_id": None}
    source = doc.get("source") or {}
    if source.get("type") == "text":
        citations = _char_citations(str(source.get("data") or ""), base, rng)
    elif source.get("type") == "content":
        citations = _block_citations(source.get("content"), base, rng)
    elif pages is not None:
        citations = _page_citations(pages, base, rng)
    else:
        return []
    if not citations:
        return []
    label = f'the document "{title}"' if title else f"document {index + 1}"
    blocks: list[dict[str, Any]] = [{"type": "text", "text": f"According to {label}:"}]
    for citation in citations:
        claim = " ".join(citation["cited_text"].split())
        blocks.append({"type": "text", "text": f" {claim}", "citations": [citation]})
    return blocks


def _char_citations(data: str, base: dict[str, Any], rng: sim_text.Rng) -> list[dict[str, Any]]:
    return [
        {"type": "char_location", "cited_text": data[a:b], **base,
         "start_char_index": a, "end_char_index": b}
        for a, b in _pick(sentence_spans(data), rng)
    ]  # fmt: skip


def _block_citations(content: Any, base: dict[str, Any], rng: sim_text.Rng) -> list[dict[str, Any]]:
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    usable = [
        (i, i + 1)
        for i, b in enumerate(blocks or ())
        if isinstance(b, dict) and b.get("type") == "text" and str(b.get("text")).strip()
    ]
    return [
        {"type": "content_block_location", "cited_text": blocks[i]["text"], **base,
         "start_block_index": i, "end_block_index": i + 1}
        for i, _ in _pick(usable, rng)
    ]  # fmt: skip


def _page_citations(pages: tuple[str, ...], base: dict[str, Any], rng: sim_text.Rng) -> list[dict[str, Any]]:
    citations = []
    usable = [(p, p + 1) for p, text in enumerate(pages) if sentence_spans(text)]
    for p, _ in _pick(usable, rng):
        spans = sentence_spans(pages[p])
        a, b = spans[rng.below(len(spans))]
        citations.append(
            {"type": "page_location", "cited_text": pages[p][a:b], **base,
             "start_page_number": p + 1, "end_page_number": p + 2}
        )  # fmt: skip
    return citations


def _pick(spans: list[tuple[int, int]], rng: sim_text.Rng) -> list[tuple[int, int]]:
    """One or two distinct spans, in document order."""
    if len(spans) <= 1:
        return spans
    first = rng.below(len(spans))
    second = rng.below(len(spans))
    return sorted({spans[first], spans[second]})


# -- web search ------------------------------------------------------------------------


def web_search(
    digest: bytes, rng: sim_text.Rng, query: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The server_tool_use + web_search_tool_result pair and the blocks that cite it."""
    tool_id = "srvtoolu_01" + sim_text.ident(digest, b"web_search")
    slug = "-".join(query.lower().split()[:6]) or "search"
    topic = query[:1].upper() + query[1:] if query else "This topic"
    results = []
    for i in range(rng.between(3, 5)):
        results.append(
            {
                "type": "web_search_result",
                "url": f"{SEARCH_HOST}/{rng.choice(_SECTIONS)}/{slug}-{i + 1}",
                "title": f"{topic}: {rng.choice(_TITLE_TAILS)}",
                "encrypted_content": sim_text.opaque(digest, b"wsc%d" % i, 96),
                "page_age": _date(rng),
            }
        )
    pair: list[dict[str, Any]] = [
        {
            "type": "server_tool_use",
            "id": tool_id,
            "name": "web_search",
            "input": {"query": query},
        },
        {"type": "web_search_tool_result", "tool_use_id": tool_id, "content": results},
    ]
    cited: list[dict[str, Any]] = [{"type": "text", "text": "Here is what the search found:"}]
    for i, result in enumerate(results[:2]):
        sentence = sim_text.PROSE.take(rng, 8).split(". ")[0].rstrip(".")
        lead = rng.choice(_SNIPPET_LEADS).format(query=query, topic=topic)
        snippet = f"{lead}{sentence[:1].lower()}{sentence[1:]}."
        cited.append(
            {
                "type": "text",
                "text": f" {snippet}",
                "citations": [
                    {
                        "type": "web_search_result_location",
                        "cited_text": snippet,
                        "url": result["url"],
                        "title": result["title"],
                        "encrypted_index": sim_text.opaque(digest, b"wsi%d" % i, 48),
                    }
                ],
            }
        )
    return pair, cited


def _date(rng: sim_text.Rng) -> str:
    return f"{rng.choice(_MONTHS)} {rng.between(1, 28)}, {rng.between(2023, 2025)}"


# -- code execution --------------------------------------------------------------------


def code_execution(
    digest: bytes, rng: sim_text.Rng, tool_type: str
) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """The tool call and result blocks, the container, and a sentence about the output.

    `code_execution_20250522` runs Python (`code_execution_result`); later versions
    run it through bash (`bash_code_execution_result`), as the real API does.
    """
    values = [rng.between(1, 99) for _ in range(rng.between(4, 7))]
    total = sum(values)
    program = (
        f"values = {values}\n"
        "total = sum(values)\n"
        'print(f"count = {len(values)}")\n'
        'print(f"sum = {total}")\n'
        'print(f"mean = {total / len(values):.2f}")\n'
    )
    stdout = f"count = {len(values)}\nsum = {total}\nmean = {total / len(values):.2f}\n"
    tool_id = "srvtoolu_01" + sim_text.ident(digest, b"code_execution")
    if tool_type == LEGACY_CODE_EXECUTION:
        name, tool_input = "code_execution", {"code": program}
    else:
        name, tool_input = (
            "bash_code_execution",
            {"command": f"python3 - <<'EOF'\n{program}EOF"},
        )
    call = {"type": "server_tool_use", "id": tool_id, "name": name, "input": tool_input}
    output = {"stdout": stdout, "stderr": "", "return_code": 0, "content": []}
    result = {
        "type": f"{name}_tool_result",
        "tool_use_id": tool_id,
        "content": {"type": f"{name}_result", **output},
    }
    container = {
        "id": "container_011C" + sim_text.ident(digest, b"container", 20),
        "expires_at": CONTAINER_EXPIRES_AT,
    }
    summary = (
        f"The program printed a sum of {total} and a mean of "
        f"{total / len(values):.2f} over {len(values)} values."
    )
    return [call, result], container, summary
