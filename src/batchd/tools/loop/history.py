"""The conversation a client sent, rewritten for a model that knows only function tools.

Earlier turns may hold Anthropic's server-tool blocks (a client sending a previous answer back,
or continuing after `pause_turn`). For the model they become what it would have seen had it called
a function: each `server_tool_use` a `tool_use` (same `srvtoolu_` id), each result block a
`tool_result` in the user message right after the assistant message that made the call, whose
text renders the result again — web search pages decoded from batchd's own `encrypted_content`
tokens, fetched documents from the block itself. Citations on earlier text are checked (their
`encrypted_index` must be batchd's) and dropped; the words stay.

A call without a result anywhere later is pending: allowed only in the last assistant message,
where the loop runs it first (`pause_turn`, or a server and a client tool in one turn).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from batchd import exceptions
from batchd.backends import pdf
from batchd.tools import citations
from batchd.tools.code_execution import render as code_render
from batchd.tools.loop import render
from batchd.tools.loop.definitions import RESULT_TYPES, ServerTool
from batchd.tools.tokens import Tokens
from batchd.tools.web_fetch import context as web_fetch_context


def urls_in(text: str) -> set[str]:
    """The URLs written in `text` (web fetch's rule on prior context: tools/web_fetch/context.py)."""
    return set(web_fetch_context.find_urls(text))


@dataclasses.dataclass
class Sources:
    """Every source of one request the model may quote, numbered from 1 in this order: the request's
    documents with citations enabled first, then results in the order the conversation holds them.

    Request documents keep their `document_index` (every `document` block of the request, in
    order); fetched documents are numbered after them, in the order they were fetched.
    """

    items: list[citations.Source] = dataclasses.field(default_factory=list)
    request_documents: int = 0  #: `document` blocks of the request
    fetched: int = 0  #: fetched documents numbered so far

    def add(self, source: citations.Source | None) -> int | None:
        """Appends `source`; its number as the model sees it (None for a source not citable)."""
        if source is None:
            return None
        self.items.append(source)
        return len(self.items)

    def next_document_index(self) -> int:
        """The document_index of the next fetched document."""
        self.fetched += 1
        return self.request_documents + self.fetched - 1


@dataclasses.dataclass
class History:
    """The rewritten conversation and what the loop needs from it."""

    messages: list[dict[str, Any]]
    pending: list[dict[str, Any]]  #: server_tool_use blocks of the last assistant message, no result
    urls: set[str]  #: URLs in the prior context (web fetch may fetch only these)
    sources: Sources
    used: Counter[str]  #: server tool calls already made in the turn this request continues


def rewrite(params: dict[str, Any], tools: dict[str, ServerTool], tokens: Tokens) -> History:
    """The conversation of `params` for the model; raises InvalidParams for a forged token or a
    result of a call that was never made, or a pending call without its tool."""
    cited = citations.sources_from_params(params)
    sources = Sources(items=list(cited), request_documents=citations.document_count(params))
    # Citable documents become numbered sources, the others lose their `citations` key.
    messages = citations.rewrite_documents(params["messages"], cited)
    results, calls = _results(messages)
    last_assistant = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    out: list[dict[str, Any]] = []
    urls: set[str] = set()
    pending: list[dict[str, Any]] = []
    used: Counter[str] = Counter()
    for i, message in enumerate(messages):
        content = message["content"]
        if message["role"] != "assistant" or not isinstance(content, list):
            if message["role"] == "user":
                _user(content, f"messages.{i}", urls)
            out.append({**message, "content": content})
            continue
        convert = _Assistant(tools, tokens, results, calls, urls, sources, f"messages.{i}")
        for j, block in enumerate(content):
            convert.block(block, j)
        convert.flush()
        if convert.pending:
            if i != last_assistant:
                call = convert.pending[0]
                raise exceptions.InvalidParams(
                    f"messages.{i}: the server tool call {call['id']} has no result; only the "
                    "last assistant message may hold a call still to run"
                )
            pending = convert.pending
        if i == len(messages) - 1:  # a continuation: the calls of the turn it continues count
            used.update(b["name"] for b in content if b.get("type") == "server_tool_use")
        out.extend(convert.out)
    for call in pending:
        if call["name"] not in tools:
            raise exceptions.InvalidParams(
                f"messages.{last_assistant}: the pending call {call['id']} needs the {call['name']} "
                f"tool, but no `{call['name']}` tool was provided"
            )
    return History(_merged(out), pending, urls, sources, used)


def _results(messages: list[dict[str, Any]]) -> tuple[dict[str, tuple[dict[str, Any], str]], set[str]]:
    """Every server tool result block of the conversation and where it is, by the id of the call
    it answers; and the ids of every server tool call."""
    found, calls = {}, set()
    for i, message in enumerate(messages):
        if message["role"] == "assistant" and isinstance(message["content"], list):
            for j, block in enumerate(message["content"]):
                if block.get("type") in RESULT_TYPES and isinstance(block.get("tool_use_id"), str):
                    found[block["tool_use_id"]] = (block, f"messages.{i}.content.{j}")
                elif block.get("type") == "server_tool_use":
                    calls.add(block.get("id"))
    return found, calls


def _user(content: Any, where: str, urls: set[str]) -> None:
    """Notes the URLs of a user message (web fetch may fetch them); refuses a tool_result that
    answers a server tool call."""
    if isinstance(content, str):
        urls.update(urls_in(content))
        return
    for j, block in enumerate(content):
        if block.get("type") != "tool_result":
            _note_urls(block, urls)
            continue
        if str(block.get("tool_use_id", "")).startswith("srvtoolu_"):
            raise exceptions.InvalidParams(
                f"{where}.content.{j}.tool_use_id: a tool_result may not answer a server tool call "
                f"({block['tool_use_id']}): batchd runs server tools itself"
            )
        inner = block.get("content")
        if isinstance(inner, str):
            urls.update(urls_in(inner))
        elif isinstance(inner, list):
            for item in inner:
                _note_urls(item, urls)


def _note_urls(block: dict[str, Any], urls: set[str]) -> None:
    """The URLs one block of a user message or client tool_result shows: written in its text, or
    the address of a `url` source (document, image) or of a `search_result`."""
    kind = block.get("type")
    texts: list[Any] = []
    if kind == "text":
        texts.append(block.get("text"))
    elif kind in ("document", "image"):
        source = block.get("source") or {}
        if source.get("type") == "url":
            urls.add(str(source.get("url", "")))
        elif source.get("type") == "text":
            texts.append(source.get("data"))
        elif source.get("type") == "content":
            inner = source.get("content")
            texts.extend([inner] if isinstance(inner, str) else [b.get("text") for b in inner or ()])
        texts.append(block.get("context"))
    elif kind == "search_result":
        urls.add(str(block.get("source", "")))
        texts.extend(b.get("text") for b in block.get("content") or () if isinstance(b, dict))
    for text in texts:
        if isinstance(text, str):
            urls.update(urls_in(text))


class _Assistant:
    """Rewrites one assistant message: segments split after each group of answered calls."""

    def __init__(
        self,
        tools: dict[str, ServerTool],
        tokens: Tokens,
        results: dict[str, tuple[dict[str, Any], str]],
        calls: set[str],
        urls: set[str],
        sources: Sources,
        where: str,
    ) -> None:
        self.tools, self.tokens, self.results, self.calls = tools, tokens, results, calls
        self.urls, self.sources, self.where = urls, sources, where
        self.out: list[dict[str, Any]] = []
        self.pending: list[dict[str, Any]] = []
        self._blocks: list[dict[str, Any]] = []
        self._answers: list[dict[str, Any]] = []  # tool_result blocks for the calls of this segment
        self._answered = False  # a result block of this segment was passed: the next block starts anew

    def block(self, block: dict[str, Any], j: int) -> None:
        kind = block.get("type")
        where = f"{self.where}.content.{j}"
        if kind in RESULT_TYPES:
            # A result may answer a call of an earlier message (a server and a client tool in one
            # turn): it was rendered after that message. A result of no call at all is refused.
            if block.get("tool_use_id") not in self.calls:
                raise exceptions.InvalidParams(
                    f"{where}.tool_use_id: no server_tool_use with id {block.get('tool_use_id')!r}"
                )
            self._answered = True
            return
        if self._answered:
            self.flush()
        if kind == "server_tool_use" and block.get("name") in RESULT_NAMES:
            call = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": block["input"]}
            self._blocks.append(call)
            found = self.results.get(block["id"])
            if found is None:
                self.pending.append(block)
            else:
                self._answers.append(self._answer(block, *found))
        elif kind == "text" and block.get("citations"):
            self._check_citations(block, where)
            self._blocks.append({"type": "text", "text": block["text"]})
        else:
            self._blocks.append(block)

    def flush(self) -> None:
        if self._blocks:
            self.out.append({"role": "assistant", "content": self._blocks})
        if self._answers:
            self.out.append({"role": "user", "content": self._answers})
        self._blocks, self._answers, self._answered = [], [], False

    def _answer(self, call: dict[str, Any], result: dict[str, Any], where: str) -> dict[str, Any]:
        """The tool_result the model sees for an answered call."""
        content = result.get("content")
        if isinstance(content, dict) and str(content.get("type", "")).endswith("_error"):
            text, is_error = render.error(str(content.get("error_code"))), True
        elif result["type"] == "web_search_tool_result":
            text, is_error = self._search(call, content, where), False
        elif result["type"] == "web_fetch_tool_result":
            text, is_error = self._fetch(content, where), False
        elif isinstance(content, dict):  # code execution: the result as the model saw it
            text, is_error = code_render.result(content), False
        else:
            raise exceptions.InvalidParams(f"{where}.content: Input should be an object")
        answer: dict[str, Any] = {"type": "tool_result", "tool_use_id": call["id"], "content": text}
        if is_error:
            answer["is_error"] = True
        return answer

    def _search(self, call: dict[str, Any], content: Any, where: str) -> str:
        if not isinstance(content, list):
            raise exceptions.InvalidParams(f"{where}: the web_search_tool_result's content is not a list")
        shown = []
        for k, item in enumerate(content):
            at = f"{where}.content.{k}.encrypted_content"
            payload = self.tokens.decode("content", item.get("encrypted_content"), at)
            if payload.get("url") != item.get("url"):
                raise exceptions.InvalidParams(f"{at}: it belongs to another URL than {item.get('url')!r}")
            hit = render.Hit(payload["url"], str(payload.get("title") or ""), str(payload.get("text") or ""),
                             payload.get("page_age"))  # fmt: skip
            self.urls.add(hit.url)
            self.urls.update(urls_in(hit.text))
            number = self.sources.add(render.hit_source(hit, self.tokens))
            shown.append((number, hit))
        return render.search_results(str(call.get("input", {}).get("query", "")), shown)

    def _fetch(self, content: Any, where: str) -> str:
        if not isinstance(content, dict) or not isinstance(content.get("content"), dict):
            raise exceptions.InvalidParams(f"{where}: the web_fetch_tool_result has no document")
        document = content["content"]
        url = str(content.get("url", ""))
        source = document.get("source") or {}
        if source.get("type") == "base64":
            text = "\n\n".join(pdf.extract_pages(str(source.get("data", ""))))
        else:
            text = str(source.get("data", ""))
        self.urls.add(url)
        self.urls.update(urls_in(text))
        cited = None
        if (document.get("citations") or {}).get("enabled"):
            cited = citations.document_source(document, self.sources.next_document_index())
        number = self.sources.add(cited)
        return render.fetched(number, url, document.get("title"), text)

    def _check_citations(self, block: dict[str, Any], where: str) -> None:
        for k, citation in enumerate(block["citations"]):
            if isinstance(citation, dict) and citation.get("type") == "web_search_result_location":
                at = f"{where}.citations.{k}.encrypted_index"
                self.tokens.decode("index", citation.get("encrypted_index"), at)


RESULT_NAMES = frozenset(RESULT_TYPES.values())


def _merged(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adjacent user messages joined (tool results first), as a model's template expects."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if out and out[-1]["role"] == "user" == message["role"]:
            before, after = _blocks(out[-1]["content"]), _blocks(message["content"])
            results = [b for b in before + after if b.get("type") == "tool_result"]
            rest = [b for b in before + after if b.get("type") != "tool_result"]
            out[-1] = {**out[-1], "content": results + rest}
        else:
            out.append(message)
    return out


def _blocks(content: Any) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
