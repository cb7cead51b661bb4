"""What the simulator reads from a request: input tokens and the documents to cite.

A token is a whitespace-separated word; images count IMAGE_TOKENS and other structured
values (tool definitions, an output format's schema) one token per 4 bytes of their compact JSON.
"""

from __future__ import annotations

from typing import Any

import orjson

from batchd import exceptions
from batchd.backends import pdf
from batchd.backends.simulator import text as sim_text

IMAGE_TOKENS = 1600  # input tokens per image, about a 1-megapixel picture

#: (document_index, document block, the pages of a base64 PDF or None)
Document = tuple[int, dict[str, Any], tuple[str, ...] | None]


def json_tokens(value: Any) -> int:
    try:
        size = len(orjson.dumps(value))
    except TypeError:  # integers beyond 64 bits
        size = len(repr(value))
    return max(1, size // 4)


def output_schema(params: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema the answer must satisfy: `output_config.format`, or the beta `output_format`."""
    config = params.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    if fmt is None:
        fmt = params.get("output_format")
    schema = fmt.get("schema") if isinstance(fmt, dict) and fmt.get("type") == "json_schema" else None
    return schema if isinstance(schema, dict) else None


def read(params: dict[str, Any]) -> tuple[int, list[Document]]:
    """Input tokens, and the documents to cite as (document_index, block, pdf pages)."""
    total = 0
    system = params.get("system")
    if isinstance(system, str):
        total += sim_text.count_words(system)
    elif isinstance(system, list):
        total += sum(_block_tokens(b, "system") for b in system)
    documents: list[Document] = []
    doc_index = 0
    for i, message in enumerate(params.get("messages") or ()):
        content = message.get("content")
        if isinstance(content, str):
            total += sim_text.count_words(content)
            continue
        for j, block in enumerate(content or ()):
            if isinstance(block, dict) and block.get("type") == "document":
                pages = _pdf_pages(block, f"messages.{i}.content.{j}")
                total += _document_tokens(block, pages)
                citations = block.get("citations")
                if isinstance(citations, dict) and citations.get("enabled"):
                    documents.append((doc_index, block, pages))
                doc_index += 1
            else:
                total += _block_tokens(block, f"messages.{i}.content.{j}")
    total += sum(json_tokens(tool) for tool in params.get("tools") or ())
    schema = output_schema(params)
    if schema is not None:
        total += json_tokens(schema)
    return max(1, total), documents


def _block_tokens(block: Any, path: str) -> int:
    if not isinstance(block, dict):
        return json_tokens(block)
    kind = block.get("type")
    if kind == "text":
        return sim_text.count_words(str(block.get("text", "")))
    if kind == "thinking":
        return sim_text.count_words(str(block.get("thinking", "")))
    if kind == "image":
        return IMAGE_TOKENS
    if kind == "document":
        return _document_tokens(block, _pdf_pages(block, path))
    if kind in ("tool_use", "server_tool_use"):
        return json_tokens(block.get("input"))
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            return sum(_block_tokens(b, f"{path}.content.{k}") for k, b in enumerate(content))
        return sim_text.count_words(content) if isinstance(content, str) else 0
    return json_tokens(block)


def _document_tokens(block: dict[str, Any], pages: tuple[str, ...] | None) -> int:
    source = block.get("source") or {}
    total = sum(sim_text.count_words(block[k]) for k in ("title", "context") if isinstance(block.get(k), str))
    if pages is not None:
        return total + sum(sim_text.count_words(p) for p in pages)
    if source.get("type") == "text":
        return total + sim_text.count_words(str(source.get("data", "")))
    if source.get("type") == "content":
        content = source.get("content")
        if isinstance(content, str):
            return total + sim_text.count_words(content)
        return total + sum(_block_tokens(b, "") for b in content or ())
    return total + json_tokens(source)


def _pdf_pages(block: dict[str, Any], path: str) -> tuple[str, ...] | None:
    source = block.get("source") or {}
    if source.get("type") != "base64" or source.get("media_type") != "application/pdf":
        return None
    try:
        return pdf.extract_pages(str(source.get("data", "")))
    except exceptions.InvalidParams as exc:
        raise exceptions.BackendError(
            f"{path}.source: {exc.message}",
            status=400,
            error_type="invalid_request_error",
        ) from exc
