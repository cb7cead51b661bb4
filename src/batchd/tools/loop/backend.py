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
import secrets
import string
from collections.abc import Iterator, Sequence
from typing import Any

from batchd import exceptions
from batchd.backends import base
from batchd.backends.base import Backend
from batchd.config.routes import BackendKind
from batchd.tools import citations, scope
from batchd.tools.code_execution.containers import Containers
from batchd.tools.code_execution.names import FUNCTIONS, REPL_VERSIONS
from batchd.tools.code_execution.session import CodeSession
from batchd.tools.loop import history
from batchd.tools.loop.calls import Calls, Fetcher
from batchd.tools.loop.definitions import FETCH, RESULT_TYPES, SEARCH, kind_of, offered_tools, server_tools
from batchd.tools.tokens import Tokens
from batchd.tools.web_search.base import SearchProvider

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def server_tool_id() -> str:
    """`srvtoolu_01` + 22 base62 characters, as Anthropic's ids."""
    return "srvtoolu_01" + "".join(secrets.choice(_BASE62) for _ in range(22))


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


def uploads_in(messages: Sequence[dict[str, Any]]) -> Iterator[str]:
    """The file ids of the `container_upload` blocks of the user messages."""
    for message in messages:
        content = message["content"]
        if message["role"] == "user" and type(content) is list:
            for block in content:
                if block.get("type") == "container_upload":
                    yield str(block.get("file_id"))


def _uploaded(messages: list[dict[str, Any]], said: dict[str, str]) -> list[dict[str, Any]]:
    """`messages` with each container_upload block replaced by the text the model reads for it."""
    out = []
    for message in messages:
        content = message["content"]
        if message["role"] == "user" and type(content) is list:
            content = [
                {"type": "text", "text": said[str(b.get("file_id"))]}
                if b.get("type") == "container_upload"
                else b
                for b in content
            ]
        out.append({**message, "content": content})
    return out


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
        uploads = list(uploads_in(self.history.messages))
        if self.code is None:
            if uploads:
                raise exceptions.InvalidParams(
                    "container_upload: the request needs a code_execution tool to use the file"
                )
            return await self._run()
        await self.code.start()
        try:
            if uploads:
                self.history.messages = _uploaded(self.history.messages, await self.code.upload(uploads))
            return await self._run()
        finally:
            await self.code.finish()

    async def _run(self) -> dict[str, Any]:
        messages = list(self.history.messages)
        if self.history.pending:
            answers = await self._run_pending()
            if messages[-1]["role"] == "assistant":
                messages.append({"role": "user", "content": answers})
            else:  # a server and a client tool in one turn: the client's results are here already
                messages[-1] = {**messages[-1], "content": answers + history._blocks(messages[-1]["content"])}
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
            content = message["content"]
            calls = [b for b in content if b.get("type") == "tool_use" and b.get("name") in self.tools]
            if not calls:
                self.content.extend(content)
                return self._message(first, message["stop_reason"], message.get("stop_sequence"))
            ids = {id(b): server_tool_id() for b in calls}
            said = [{**b, "id": ids[id(b)]} if id(b) in ids else b for b in content]
            new = set(ids.values())
            uses = [_server_tool_use(b) for b in said if b.get("type") == "tool_use" and b.get("id") in new]
            client_call = any(
                b.get("type") == "tool_use" and b.get("name") not in self.tools for b in content
            )
            if client_call or iterations >= self.loop.max_iterations:
                # Not run: pending, to run at the start of the next request (spec §1.5).
                self.content.extend(_server_tool_use(b) if b.get("id") in new else b for b in said)
                stop = "tool_use" if client_call else "pause_turn"
                return self._message(first, stop, None)
            allowed = [self.calls.reserve(call["name"]) for call in uses]
            done = await asyncio.gather(*(self.calls.run(c, a) for c, a in zip(uses, allowed, strict=True)))
            results = {call["id"]: result for call, (result, _) in zip(uses, done, strict=True)}
            for block in said:
                if block.get("id") in results:
                    self.content.extend([_server_tool_use(block), results[block["id"]]])
                else:
                    self.content.append(block)
            messages.append({"role": "assistant", "content": said})
            messages.append({"role": "user", "content": [answer for _, answer in done]})
            if iterations == 1:
                request = _relaxed(request, self.tools)

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


def _server_tool_use(call: dict[str, Any]) -> dict[str, Any]:
    return {"type": "server_tool_use", "id": call["id"], "name": call["name"], "input": call["input"]}


def _relaxed(request: dict[str, Any], tools: dict[str, Any]) -> dict[str, Any]:
    """After the first call, a tool_choice forcing a server tool (or any tool) no longer forces:
    the model must be free to answer with the results."""
    choice = request.get("tool_choice") or {}
    if choice.get("type") == "any" or (choice.get("type") == "tool" and choice.get("name") in tools):
        relaxed: dict[str, Any] = {"type": "auto"}
        if choice.get("disable_parallel_tool_use"):
            relaxed["disable_parallel_tool_use"] = True
        return {**request, "tool_choice": relaxed}
    return request
