"""Citations for any model: the model quotes its sources in markup batchd can parse, batchd finds
each quote in its source and answers with Anthropic's citation blocks at exact indices.

The promise: a citation's `cited_text` is always the source's own text at the indices the
citation gives (`source.text[start:end]`, or the pages or blocks it names); a quote that is not
found in the source it names is not cited — its words stay in the answer, uncited. Never an
invented citation.

How the server-tool loop uses this package, per request (params already prepared):

    cited = citations.sources_from_params(params)      # request documents with citations.enabled
    inner = citations.rewrite_params(params, cited, instruct=<a web_search tool, or a web_fetch
                                                              tool with citations, is offered>)
    ... call the backend with `inner`; as the tools run, append to `cited`:
        citations.Source.search_result(url=, title=, text=, encrypted_index_for=)   per search hit
        citations.document_source(fetched document block, document_index)          per fetched page
            (or Source.plain / Source.pdf from the fetcher's text and page texts; number fetched
            documents from citations.document_count(params) on)
      and show each new source to the model, in the tool result, as
        citations.render_source(source, number)            # number = its position in `cited` + 1
    ... when the model answers with text:
    blocks = citations.cite(text, cited)                   # text blocks, some with `citations`

`rewrite_params` replaces each citable document by its rendered text (so every backend, the
OpenAI translation included, accepts the request) and ends the system prompt with
`CITATION_INSTRUCTIONS`. Modules: sources.py (Source and the request's documents), markup.py
(the quote markup, its instructions and parser), search.py (finding a quote in a source),
blocks.py (`cite`: the text blocks and citation objects), live.py (`Live`: `cite` as a streamed
answer comes), prompt.py (the rewritten request).
Index rules, in brief: `char_location` counts Unicode code points (Python `str` indices, CRLF as
two) from 0, end exclusive; `page_location` pages from 1, end exclusive; `content_block_location`
blocks from 0, end exclusive; `document_index` counts every document block of the request
(`sources.document_slots`). docs/server-tools.md has the whole story.
"""

from __future__ import annotations

from batchd.tools.citations import live
from batchd.tools.citations.blocks import citation_for, cite
from batchd.tools.citations.live import Live
from batchd.tools.citations.markup import CITATION_INSTRUCTIONS
from batchd.tools.citations.prompt import (
    render,
    render_source,
    rewrite_documents,
    rewrite_params,
    with_instructions,
)
from batchd.tools.citations.sources import Source, document_count, document_source, sources_from_params

__all__ = [
    "CITATION_INSTRUCTIONS",
    "Live",
    "Source",
    "citation_for",
    "cite",
    "document_count",
    "document_source",
    "live",
    "render",
    "render_source",
    "rewrite_documents",
    "rewrite_params",
    "sources_from_params",
    "with_instructions",
]
