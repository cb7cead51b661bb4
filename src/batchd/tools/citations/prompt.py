"""The request as the inner backend sees it: each citable document shown as a numbered source the
model can quote, and the instructions that ask it to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batchd.tools.citations import markup, sources


def render_source(source: sources.Source, number: int) -> str:
    """How the model is shown `source`, under the number (1-based) that its quotes must name.

    The body is exactly `source.text`, so the words the model copies are the words searched. A
    document's `context` is shown before the tag, outside what may be quoted.
    """
    return render(number, source.title, source.text, url=source.url, context=source.context)


def render(
    number: int, title: str | None, body: str, *, url: str | None = None, context: str | None = None
) -> str:
    """Source `number` shown as `<source id="N" title="…">body</source>`: the one form every source
    takes, whoever shows it (a request document here, a search hit or a fetched page in the loop)."""
    attrs = f' id="{number}"'
    if title:
        attrs += f' title="{_attr(title)}"'
    if url:
        attrs += f' url="{_attr(url)}"'
    lead = f"Context of source {number}: {context}\n" if context else ""
    return f"{lead}<source{attrs}>\n{body}\n</source>"


def _attr(value: str) -> str:
    return " ".join(value.replace('"', "'").split())


def rewrite_params(
    params: dict[str, Any], cited: Sequence[sources.Source], *, instruct: bool = False
) -> dict[str, Any]:
    """`params` for the inner backend, when its answer is to be cited by `cite(text, cited)`.

    `cited` is `sources_from_params(params)`, possibly followed by sources the loop adds later
    (search results, fetched documents): a source's number is its position in `cited` plus one.
    Each document block that is one of `cited` (matched by `document_index`) becomes a text block
    holding `render_source(source, number)`; every other document loses its `citations` key (one
    batchd cannot read is left for the backend to translate or refuse). `CITATION_INSTRUCTIONS`
    end the system prompt when a document is cited or `instruct` is true (the loop passes true
    when it offers a web search tool, or a web fetch tool with citations enabled). `params` is
    not changed; the result shares what did not change. Without `instruct` and without a document
    that has a `citations` key, returns `params` itself.
    """
    if not instruct and not any("citations" in b for _, _, b in sources.walk_documents(params)):
        return params
    out = {**params, "messages": rewrite_documents(params.get("messages") or (), cited)}
    if instruct or any(s.document_index is not None for s in cited):
        out["system"] = with_instructions(params.get("system"))
    return out


def rewrite_documents(
    messages: Sequence[dict[str, Any]], cited: Sequence[sources.Source]
) -> list[dict[str, Any]]:
    """`messages` with each document that is one of `cited` (matched by `document_index`) shown as
    `render_source(source, its position in cited + 1)` in a text block, and every other document
    without its `citations` key: one batchd cannot read (`url`, `file`) goes to the backend as it
    came, minus a key no backend but Anthropic's knows. `messages` is not changed."""
    shown = {s.document_index: (n, s) for n, s in enumerate(cited, 1) if s.document_index is not None}
    out = [_copied(m) for m in messages]
    for index, _, container, k in sources.document_slots(out):
        block = container[k]
        if index in shown:
            container[k] = {"type": "text", "text": render_source(shown[index][1], shown[index][0])}
            if "cache_control" in block:
                container[k]["cache_control"] = block["cache_control"]
        elif "citations" in block:
            container[k] = {key: v for key, v in block.items() if key != "citations"}
    return out


def _copied(message: dict[str, Any]) -> dict[str, Any]:
    """`message` with new lists wherever a document block may be replaced."""
    content = message.get("content")
    if not isinstance(content, list):
        return message
    blocks = [
        {**b, "content": list(b["content"])}
        if b.get("type") == "tool_result" and isinstance(b.get("content"), list)
        else b
        for b in content
    ]
    return {**message, "content": blocks}


def with_instructions(system: Any) -> Any:
    """`system` ending with `CITATION_INSTRUCTIONS`."""
    if not system:
        return markup.CITATION_INSTRUCTIONS
    if isinstance(system, str):
        return f"{system}\n\n{markup.CITATION_INSTRUCTIONS}"
    return [*system, {"type": "text", "text": markup.CITATION_INSTRUCTIONS}]
