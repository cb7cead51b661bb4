"""The server-tool loop, streamed: each model call's blocks as they arrive, each tool's blocks whole.

The events add up to the Message the loop answers unstreamed (backend.py), block for block:

- a pending call left by the previous response runs first; its result block follows
  `message_start` (which waits for the first model call to begin: it carries that call's id);
- in each model call, thinking, text and client `tool_use` blocks stream as the model writes them;
  from a call of a server tool on, the rest of that turn is held, the tools run, and the blocks
  follow whole in the unstreamed order (`server_tool_use`, then its result block, for each);
- when the answer is cited (a search or a citing fetch is offered, or a document has citations), a
  text block's plain text streams as it comes, and each quote (`<cite …>…</cite>`)
  follows as a text block of its own with its `citations` once its closing tag is in, as
  `citations.cite` makes them of the whole text (`citations.Live`);
- `message_delta` carries the summed usage (`server_tool_use` counts the searches and fetches that
  ran), the last call's stop fields, and the `container` of a request that ran code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from batchd import exceptions
from batchd.backends import streaming
from batchd.backends.streaming import Accumulator, Event, block_events, delta
from batchd.tools import citations
from batchd.tools.loop.blocks import relaxed
from batchd.tools.loop.definitions import FETCH, SEARCH

if TYPE_CHECKING:
    from batchd.tools.loop.backend import _Run


async def stream(run: _Run) -> AsyncIterator[Event]:
    """The events of `run` (a request that needs the loop)."""
    async with run.session():
        async for event in _Stream(run).events():
            yield event


class _Stream:
    def __init__(self, run: _Run) -> None:
        self.run = run
        self.blocks = 0  # blocks sent
        tools = run.tools
        #: the answer is cited (tools/loop/backend.py's `_message`): when there are sources, or may be
        self.cites = SEARCH in tools or (FETCH in tools and tools[FETCH].cites)

    def whole(self, blocks: list[dict[str, Any]]) -> Iterator[Event]:
        """`blocks` sent whole (text cited first, as the unstreamed answer's)."""
        sources = self.run.history.sources.items
        for block in blocks:
            if block.get("type") == "text" and sources:
                parts = [b for b in citations.cite(block["text"], sources) if b.get("text")]
            else:
                parts = [block]
            for part in parts:
                yield from block_events(self.blocks, part)
                self.blocks += 1

    def end(self, first: dict[str, Any], stop_reason: str, stop_sequence: str | None) -> Iterator[Event]:
        yield "message_delta", streaming.delta_of(self.run._message(first, stop_reason, stop_sequence))
        yield "message_stop", {}

    async def events(self) -> AsyncIterator[Event]:
        run = self.run
        messages = await run.opening()
        request = run._request()
        first: dict[str, Any] | None = None
        iterations = 0
        while True:
            turn = _Turn(self)
            params = {**request, "messages": messages}
            async for name, data in streaming.stream_of(run.loop.inner, params, betas=run.betas):
                if name == "message_start" and first is None:
                    first = data["message"]
                    yield "message_start", {"message": _start(first["id"], run.params["model"])}
                    for event in self.whole(run.content):  # the pending calls' results
                        yield event
                for event in turn.add(name, data):
                    yield event
            iterations += 1
            message = turn.acc.message
            if first is None or not message:
                raise exceptions.BackendError("the model's stream ended before it began", status=502)
            run._add_usage(message.get("usage") or {})
            called = run.turn(message["content"])
            if called is None:
                for event in self.end(first, message["stop_reason"], message.get("stop_sequence")):
                    yield event
                return
            held = called.said[turn.held_from or 0 :]
            if called.client_call or iterations >= run.loop.max_iterations:
                for event in self.whole(called.unrun(held)):
                    yield event
                for event in self.end(first, called.stop, None):
                    yield event
                return
            results, answers = await run.run_calls(called.uses)
            for event in self.whole(called.ran(held, results)):
                yield event
            messages.append({"role": "assistant", "content": called.said})
            messages.append({"role": "user", "content": answers})
            if iterations == 1:
                request = relaxed(request, run.tools)


def _start(message_id: str, model: str) -> dict[str, Any]:
    usage = dict.fromkeys(
        ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"), 0
    )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }


class _Turn:
    """One model call's events, re-indexed into the response's: each block live, cited or held."""

    def __init__(self, out: _Stream) -> None:
        self.out = out
        self.acc = Accumulator()
        self.held_from: int | None = None  # the first block held (a server tool's call) on
        self.routes: dict[int, Any] = {}  # the call's block index -> our index, or a _Cited

    def add(self, name: str, data: dict[str, Any]) -> Iterator[Event]:
        self.acc.add(name, data)
        if name == "content_block_start":
            index, block = data["index"], data["content_block"]
            tools = self.out.run.tools
            if self.held_from is None and block.get("type") == "tool_use" and block.get("name") in tools:
                self.held_from = index
            if self.held_from is not None:
                return
            cited = self.out.run.history.sources.items
            if block.get("type") == "text" and (cited or self.out.cites):
                self.routes[index] = _Cited(self.out, cited)
                return
            self.routes[index] = self.out.blocks
            self.out.blocks += 1
            yield name, {**data, "index": self.routes[index]}
        elif name in ("content_block_delta", "content_block_stop"):
            route = self.routes.get(data["index"])
            if isinstance(route, _Cited):
                if name == "content_block_delta":
                    yield from route.add(data["delta"])
                else:
                    yield from route.end()
            elif route is not None:
                yield name, {**data, "index": route}


class _Cited:
    """A text block of an answer that cites: plain text as it comes, each quote as a cited block once
    its closing tag is in (`citations.Live`)."""

    def __init__(self, out: _Stream, cited: Sequence[citations.Source]) -> None:
        self.out = out
        self.live = citations.Live(cited)
        self.index = -1  # ours, of the block open

    def add(self, change: dict[str, Any]) -> Iterator[Event]:
        if change.get("type") == "text_delta":
            yield from self._events(self.live.add(change["text"]))

    def end(self) -> Iterator[Event]:
        yield from self._events(self.live.end())

    def _events(self, ops: list[citations.live.Op]) -> Iterator[Event]:
        for op, value in ops:
            if op == "start":
                self.index = self.out.blocks
                self.out.blocks += 1
                yield "content_block_start", {"index": self.index, "content_block": value}
            elif op == "citation":
                yield "content_block_delta", delta(self.index, "citations_delta", citation=value)
            elif op == "text" and value:
                yield "content_block_delta", delta(self.index, "text_delta", text=value)
            elif op == "stop":
                yield "content_block_stop", {"index": self.index}
