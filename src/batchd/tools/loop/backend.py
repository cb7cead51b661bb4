"""`ToolLoop`: a Backend that runs a request's server tools (web search, web fetch, code
execution) around any other backend.

A request without server tools (and without earlier server-tool blocks, citable documents or a
`container`) goes straight to the inner backend: one scan of `tools` and the messages' block
types. Otherwise:

1. the request's server tools are offered as function tools, its earlier server-tool blocks
   rewritten for the model (`history.py`), and a call left pending by the previous response
   (`pause_turn`, or a server and a client tool in one turn) is run first: the response begins
   with its result block;
2. the inner backend is called; each `tool_use` naming a server tool becomes a `server_tool_use`
   (`srvtoolu_` id) followed by its result block, and the model is called again with the results,
   until it answers without one;
3. a turn that also calls a client tool ends there (`stop_reason: "tool_use"`, the server call
   pending, not run); a turn at the iteration cap ends with `stop_reason: "pause_turn"`;
4. `usage` sums every call, with `server_tool_use` counting the searches and fetches that ran;
   thinking blocks stay where each call put them; the answer's text is cited (`tools/citations`);
   a request that ran code (or named a `container`) has the message's `container`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from typing import Any

from batchd import exceptions
from batchd.backends import base, streaming
from batchd.backends.base import Backend
from batchd.config.routes import BackendKind
from batchd.tools import citations, scope
from batchd.tools.code_execution.containers import Containers
from batchd.tools.code_execution.names import FUNCTIONS, REPL_VERSIONS
from batchd.tools.code_execution.session import CodeSession
from batchd.tools.loop import history
from batchd.tools.loop import stream as loop_stream
from batchd.tools.loop.blocks import relaxed, server_tool_id, server_tool_use, uploaded, uploads_in
from batchd.tools.loop.calls import Calls, Fetcher
from batchd.tools.loop.definitions import FETCH, RESULT_TYPES, SEARCH, kind_of, offered_tools, server_tools
from batchd.tools.tokens import Tokens
from batchd.tools.web_search.base import SearchProvider

_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def needs_loop(params: dict[str, Any]) -> bool:
    """Whether batchd must run tools for `params`: a server tool, an earlier server-tool block to
    show the model again, a `container` to use, or (with citations) a document to cite."""
    if params.get("container") is not None:
        return True
    if any(True for _ in uploads_in(params["messages"])):
        return True
    for tool in params.get("tools") or ():
        if kind_of(tool) is not None:
            return True
    for message in params["messages"]:
        content = message["content"]
        if type(content) is not list:
            continue
        for block in content:
            kind = block.get("type")
            if kind in RESULT_TYPES or (kind == "server_tool_use" and block.get("name") in _NAMES):
                return True
            if _cites(block):
                return True
    return False


_NAMES = frozenset({SEARCH, FETCH, *FUNCTIONS})


def _cites(block: dict[str, Any]) -> bool:
    inner = block.get("content") if block.get("type") == "tool_result" else None
    for candidate in inner if isinstance(inner, list) else (block,):
        if candidate.get("type") == "document" and (candidate.get("citations") or {}).get("enabled"):
            return True
    return False


class ToolLoop:
    """Runs the server tools of each request around `inner` (never the simulator: it answers
    server tools itself)."""

    instant: base.InstantAnswer | None = None  # a loop's answer always needs I/O

    def __init__(
        self,
        inner: Backend,
        *,
        provider: SearchProvider,
        fetcher: Fetcher | None,
        tokens: Tokens,
        max_iterations: int,
        max_results: int = 5,
        metrics: Any = None,
        containers: Containers | None = None,
    ) -> None:
        self.inner = inner
        self.containers = containers
        self.provider = provider
        self.fetcher = fetcher
        self.tokens = tokens
        self.max_iterations = max_iterations
        self.max_results = max_results
        self.metrics = metrics

    @property
    def kind(self) -> BackendKind:
        return self.inner.kind

    async def create_message(
        self, params: dict[str, Any], *, attempt: int = 1, betas: Sequence[str] = ()
    ) -> dict[str, Any]:
        if not needs_loop(params):
            return await self.inner.create_message(params, attempt=attempt, betas=betas)
        return await _Run(self, params, attempt, betas).run()

    def stream_message(
        self, params: dict[str, Any], *, betas: Sequence[str] = ()
    ) -> AsyncIterator[streaming.Event]:
        """The answer's events: the model's tokens as they come, each tool's blocks whole as it
        runs (stream.py)."""
        if not needs_loop(params):
            return streaming.stream_of(self.inner, params, betas=betas)
        return loop_stream.stream(_Run(self, params, 1, betas))

    async def count_tokens(self, params: dict[str, Any], *, betas: Sequence[str] = ()) -> int:
        """The inner backend's count of what the model is shown: the server tools as the function
        tools offered to it, earlier server-tool blocks as rewritten for it."""
        if needs_loop(params):
            tools = server_tools(params)
            shown = history.rewrite(params, tools, self.tokens)
            params = {**params, "tools": offered_tools(params, tools), "messages": shown.messages}
        return await self.inner.count_tokens(params, betas=betas)

    async def aclose(self) -> None:
        """Nothing of its own: the inner backend and the providers belong to the router's tools."""


@dataclasses.dataclass
class Turn:
    """A model call that called server tools: its blocks with the server calls' new ids (`said`),
    those calls as `server_tool_use` blocks (`uses`), their ids, whether it called a client tool."""

    said: list[dict[str, Any]]
    uses: list[dict[str, Any]]
    new: set[str]
    client_call: bool

    @property
    def stop(self) -> str:
        """The stop reason when the calls are left pending."""
        return "tool_use" if self.client_call else "pause_turn"

    def unrun(self, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`blocks` (of `said`) as the response shows them when the calls are left pending."""
        return [server_tool_use(b) if b.get("id") in self.new else b for b in blocks]

    def ran(self, blocks: list[dict[str, Any]], results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """`blocks` (of `said`) as the response shows them once the calls ran: each call's result
        block after it."""
        out: list[dict[str, Any]] = []
        for block in blocks:
            if block.get("id") in results:
                out.extend([server_tool_use(block), results[block["id"]]])
            else:
                out.append(block)
        return out


class _Run:
    """One request through the loop."""

    def __init__(self, loop: ToolLoop, params: dict[str, Any], attempt: int, betas: Sequence[str]) -> None:
        self.loop, self.params, self.attempt, self.betas = loop, params, attempt, betas
        self.tools = server_tools(params)
        self.history = history.rewrite(params, self.tools, loop.tokens)
        self.code = _code_session(loop, self.tools, params)
        self.calls = Calls(
            self.tools,
            self.history,
            provider=loop.provider,
            fetcher=loop.fetcher,
            tokens=loop.tokens,
            max_results=loop.max_results,
            metrics=loop.metrics,
            code=self.code,
        )
        self.content: list[dict[str, Any]] = []  # the response's content so far
        self.usage: dict[str, Any] = dict.fromkeys(_USAGE_KEYS, 0)

    async def run(self) -> dict[str, Any]:
        async with self.session():
            return await self._run()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        """The request's code session (its container, the files it uploads), while it runs."""
        uploads = list(uploads_in(self.history.messages))
        if self.code is None:
            if uploads:
                raise exceptions.InvalidParams(
                    "container_upload: the request needs a code_execution tool to use the file"
                )
            yield
            return
        await self.code.start()
        try:
            if uploads:
                self.history.messages = uploaded(self.history.messages, await self.code.upload(uploads))
            yield
        finally:
            await self.code.finish()

    async def opening(self) -> list[dict[str, Any]]:
        """The messages of the first model call, once the pending calls (if any) have run: their
        result blocks begin `content`."""
        messages = list(self.history.messages)
        if self.history.pending:
            answers = await self._run_pending()
            if messages[-1]["role"] == "assistant":
                messages.append({"role": "user", "content": answers})
            else:  # a server and a client tool in one turn: the client's results are here already
                messages[-1] = {**messages[-1], "content": answers + history._blocks(messages[-1]["content"])}
        return messages

    async def _run(self) -> dict[str, Any]:
        messages = await self.opening()
        request = self._request()
        first: dict[str, Any] | None = None
        iterations = 0
        while True:
            message = await self.loop.inner.create_message(
                {**request, "messages": messages}, attempt=self.attempt, betas=self.betas
            )
            iterations += 1
            first = first or message
            self._add_usage(message.get("usage") or {})
            turn = self.turn(message["content"])
            if turn is None:
                self.content.extend(message["content"])
                return self._message(first, message["stop_reason"], message.get("stop_sequence"))
            if turn.client_call or iterations >= self.loop.max_iterations:
                # Not run: pending, to run at the start of the next request (spec §1.5).
                self.content.extend(turn.unrun(turn.said))
                return self._message(first, turn.stop, None)
            results, answers = await self.run_calls(turn.uses)
            self.content.extend(turn.ran(turn.said, results))
            messages.append({"role": "assistant", "content": turn.said})
            messages.append({"role": "user", "content": answers})
            if iterations == 1:
                request = relaxed(request, self.tools)

    def turn(self, content: list[dict[str, Any]]) -> Turn | None:
        """What a model call that answered `content` asked of the server tools; None: nothing."""
        calls = [b for b in content if b.get("type") == "tool_use" and b.get("name") in self.tools]
        if not calls:
            return None
        ids = {id(b): server_tool_id() for b in calls}
        said = [{**b, "id": ids[id(b)]} if id(b) in ids else b for b in content]
        new = set(ids.values())
        uses = [server_tool_use(b) for b in said if b.get("type") == "tool_use" and b.get("id") in new]
        client_call = any(b.get("type") == "tool_use" and b.get("name") not in self.tools for b in content)
        return Turn(said, uses, new, client_call)

    async def run_calls(
        self, uses: list[dict[str, Any]]
    ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """Run the server tools' calls `uses` together: their result blocks by call id, and what
        the model reads of them."""
        allowed = [self.calls.reserve(call["name"]) for call in uses]
        done = await asyncio.gather(*(self.calls.run(c, a) for c, a in zip(uses, allowed, strict=True)))
        results = {call["id"]: result for call, (result, _) in zip(uses, done, strict=True)}
        return results, [answer for _, answer in done]

    async def _run_pending(self) -> list[dict[str, Any]]:
        pending = self.history.pending
        # Counted already: the turn this request continues holds them.
        allowed = [
            (limit := self.tools[call["name"]].max_uses) is None or self.calls.used[call["name"]] <= limit
            for call in pending
        ]
        done = await asyncio.gather(*(self.calls.run(c, a) for c, a in zip(pending, allowed, strict=True)))
        self.content.extend(result for result, _ in done)
        return [answer for _, answer in done]

    def _request(self) -> dict[str, Any]:
        """The params sent to the inner backend, but for the messages."""
        request = {k: v for k, v in self.params.items() if k != "container"}
        request["tools"] = offered_tools(self.params, self.tools)
        citable = SEARCH in self.tools or (FETCH in self.tools and self.tools[FETCH].cites)
        if citable or self.history.sources.items:
            request["system"] = citations.with_instructions(self.params.get("system"))
        return request

    def _add_usage(self, usage: dict[str, Any]) -> None:
        for key in _USAGE_KEYS:
            self.usage[key] += int(usage.get(key) or 0)

    def _message(self, first: dict[str, Any], stop_reason: str, stop_sequence: str | None) -> dict[str, Any]:
        sources = self.history.sources.items
        content: list[dict[str, Any]] = []
        for block in self.content:
            if block.get("type") == "text" and sources:
                content.extend(b for b in citations.cite(block["text"], sources) if b.get("text"))
            else:
                content.append(block)
        usage = {
            **self.usage,
            "server_tool_use": {
                "web_search_requests": self.calls.billed[SEARCH],
                "web_fetch_requests": self.calls.billed[FETCH],
            },
        }
        message = {
            "id": first["id"],
            "type": "message",
            "role": "assistant",
            "model": self.params["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage,
        }
        container = self.code.container() if self.code is not None else None
        if container is not None:
            message["container"] = container
        return message


def _code_session(loop: ToolLoop, tools: dict[str, Any], params: dict[str, Any]) -> CodeSession | None:
    """The request's code session: when it offers code execution or names a container."""
    requested = params.get("container")
    if isinstance(requested, dict):  # beta: {"id", "skills"}
        requested = requested.get("id")
    if loop.containers is None or not (requested or any(f in tools for f in FUNCTIONS)):
        return None
    version = next((t.version for name, t in tools.items() if name in FUNCTIONS), "")
    return CodeSession(
        loop.containers,
        scope.workspace.get(),
        requested if isinstance(requested, str) else None,
        repl=version in REPL_VERSIONS,
        metrics=loop.metrics,
    )
