"""A streamed chat completion (`stream: true`, `stream_options.include_usage`) -> Anthropic's events,
translated chunk by chunk as the upstream sends them.

The events add up to the Message `response.to_message` makes of the same completion unstreamed:
`reasoning_content` (or a leading `<think>…</think>` in the text) streams as a `thinking` block,
stripped as that one is (leading blanks dropped, trailing ones held back until more words come),
`content` as a `text` block, each tool call as a `tool_use` block whose arguments stream as
`input_json_delta` (checked at the end: arguments that are not a JSON object end the stream with an
error, as they fail the unstreamed call); `refusal` is a text block at the end. Usage comes with
the last chunk, so `message_start` says 0 tokens and `message_delta` the counts.

An upstream that answers a whole completion instead (it does not stream) is translated whole; one
that refuses `stream_options` (400 or 422 naming it) is asked again without it, its usage then
whatever its last chunk says.

Where the two can differ: a `<think>` that is never closed (its words were already sent as
thinking), and chunks that interleave blocks (reasoning after text, a tool call's arguments after
the next call began) — no server known to batchd sends those.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson

from batchd import exceptions
from batchd.backends import sse
from batchd.backends.http import ANTHROPIC_ERROR_TYPES, Upstream
from batchd.backends.openai import response
from batchd.backends.streaming import Event, delta, message_events

_OPEN, _CLOSE = "<think>", "</think>"


async def stream_message(
    upstream: Upstream, body: dict[str, Any], *, model: str, params: dict[str, Any]
) -> AsyncIterator[Event]:
    """The events of the chat completion of `body` (a `to_chat` body), streamed, as `model`."""
    body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    translator = Translator(model=model, params=params, upstream=upstream.name)
    async for name, data in _chunks(upstream, body):
        if name == sse.WHOLE:  # an upstream that does not stream: its whole completion
            for event in message_events(whole(data, upstream.name, model=model, params=params)):
                yield event
            return
        if data.strip() == "[DONE]":
            continue  # read on to the body's end: a connection read to its end is kept alive
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise response._bad(upstream.name, "a stream chunk that is not JSON") from None
        if not isinstance(chunk, dict):
            raise response._bad(upstream.name, "a stream chunk that is not a JSON object")
        for event in translator.chunk(chunk):
            yield event
    for event in translator.end():
        yield event


async def _chunks(upstream: Upstream, body: dict[str, Any]) -> AsyncIterator[tuple[str, str]]:
    """The upstream's events for `body`; sent once more without `stream_options` when the upstream
    refuses the field itself (a server that validates strictly), before it has sent anything."""
    started = False
    try:
        async for event in sse.post_events(upstream, "/chat/completions", body):
            started = True
            yield event
    except exceptions.BackendError as exc:
        if started or exc.status not in (400, 422) or "stream_options" not in exc.message:
            raise
        plain = {k: v for k, v in body.items() if k != "stream_options"}
        async for event in sse.post_events(upstream, "/chat/completions", plain):
            yield event


def whole(data: str, upstream: str, *, model: str, params: dict[str, Any]) -> dict[str, Any]:
    """The Message of a whole completion (`data`, JSON) an upstream answered a stream request with."""
    try:
        completion = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise response._bad(upstream, "a body that is not JSON") from None
    if not isinstance(completion, dict):
        raise response._bad(upstream, "JSON that is not an object")
    return response.to_message(completion, model=model, params=params, upstream=upstream)


@dataclasses.dataclass
class _Call:
    order: int  # its position among the calls: its id when the upstream gives none
    id: str = ""
    name: str = ""
    arguments: str = ""
    index: int | None = None  # its block's, once started


class Translator:
    """One streamed completion's chunks -> events (module docstring)."""

    def __init__(self, *, model: str, params: dict[str, Any], upstream: str) -> None:
        self.model, self.params, self.upstream = model, params, upstream
        self.seed: str | None = None
        self.blocks = 0  # blocks started
        self.open: str | None = None  # the kind of the block open: thinking, text, tool
        self.mode = "head"  # text: head (a leading <think>?), tag (inside it), after, text
        self.held = ""  # text held back: the head, or the end of a <think> that may be its close
        self.blank = ""  # a thinking block's trailing blanks, sent when more words come
        self.reasoned = False
        self.texts = 0
        self.refusal = ""
        self.calls: dict[Any, _Call] = {}
        self.finish: str | None = None
        self.last: dict[str, Any] = {}  # the choice that finished
        self.usage: dict[str, Any] = {}
        self.timings: dict[str, Any] | None = None

    # -- chunks ------------------------------------------------------------------------

    def chunk(self, data: dict[str, Any]) -> Iterator[Event]:
        error = data.get("error")
        if error is not None:
            raise _upstream_error(self.upstream, error)
        if self.seed is None:
            self.seed = str(data.get("id") or secrets.token_hex(12))
            yield "message_start", {"message": self._start()}
        if isinstance(data.get("usage"), dict):
            self.usage = data["usage"]
        if isinstance(data.get("timings"), dict):
            self.timings = data["timings"]
        for choice in data.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            change = choice.get("delta") or {}
            reasoning = change.get("reasoning_content") or change.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                self.reasoned = True
                yield from self._thinking(reasoning)
            text = change.get("content")
            if isinstance(text, list):
                text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
            if isinstance(text, str) and text:
                yield from self._text(text)
            if isinstance(change.get("refusal"), str):
                self.refusal += change["refusal"]
            for position, call in enumerate(change.get("tool_calls") or ()):
                if isinstance(call, dict):
                    yield from self._call(call, position)
            if choice.get("finish_reason"):
                self.finish, self.last = choice["finish_reason"], choice

    def end(self) -> Iterator[Event]:
        if self.seed is None:
            raise response._bad(self.upstream, "an empty stream")
        if self.mode == "head" and self.held:
            self.mode, held, self.held = "text", self.held, ""
            yield from self._text(held)
        elif self.mode == "tag" and self.held:
            held, self.held = self.held, ""
            yield from self._thinking(held)
        yield from self._close()
        if self.refusal and not self.texts:
            yield from self._text_block(self.refusal)
            yield from self._close()
        for call in self.calls.values():
            if call.index is None:
                raise response._bad(self.upstream, f"tool call {call.order} without a function name")
            try:
                parsed = orjson.loads(call.arguments or "{}")
            except orjson.JSONDecodeError:
                parsed = None
            if not isinstance(parsed, dict):
                raise response._bad(
                    self.upstream,
                    f"tool call {call.order} ({call.name}) with arguments that are not a JSON object",
                )
        yield "message_delta", self._delta()
        yield "message_stop", {}

    # -- blocks ------------------------------------------------------------------------

    def _start(self) -> dict[str, Any]:
        return {
            "id": response._id("msg_", self.seed or ""),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }

    def _begin(self, kind: str, block: dict[str, Any]) -> Iterator[Event]:
        yield from self._close()
        self.open = kind
        yield "content_block_start", {"index": self.blocks, "content_block": block}
        self.blocks += 1

    def _close(self) -> Iterator[Event]:
        if self.open is None:
            return
        index = self.blocks - 1
        if self.open == "thinking":
            self.blank = ""
            yield "content_block_delta", delta(index, "signature_delta", signature="")
        self.open = None
        yield "content_block_stop", {"index": index}

    def _thinking(self, text: str) -> Iterator[Event]:
        if self.open != "thinking":
            text = text.lstrip()
            if not text:
                return
            yield from self._begin("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        text = self.blank + text
        words = text.rstrip()
        self.blank = text[len(words) :]
        if words:
            yield "content_block_delta", delta(self.blocks - 1, "thinking_delta", thinking=words)

    def _text(self, text: str) -> Iterator[Event]:
        if self.mode == "head":
            self.held += text
            head = self.held.lstrip()
            if not head or (_OPEN.startswith(head) and not self.reasoned):
                return  # blanks, or maybe the start of <think>: wait
            held, self.held = self.held, ""
            if head.startswith(_OPEN) and not self.reasoned:
                self.mode = "tag"
                text = head[len(_OPEN) :]
            else:
                self.mode = "text"
                text = held
        if self.mode == "tag":
            self.held += text
            end = self.held.find(_CLOSE)
            if end < 0:
                keep = len(_CLOSE) - 1  # the start of a close tag cut between two chunks
                sure, self.held = self.held[:-keep], self.held[-keep:]
                if sure:
                    yield from self._thinking(sure)
                return
            thought, text = self.held[:end], self.held[end + len(_CLOSE) :]
            self.held = ""
            if thought:
                yield from self._thinking(thought)
            yield from self._close()
            self.mode = "after"
        if self.mode == "after":
            text = text.lstrip()
            if not text:
                return
            self.mode = "text"
        yield from self._text_block(text)

    def _text_block(self, text: str) -> Iterator[Event]:
        if self.open != "text":
            yield from self._begin("text", {"type": "text", "text": ""})
            self.texts += 1
        yield "content_block_delta", delta(self.blocks - 1, "text_delta", text=text)

    def _call(self, change: dict[str, Any], position: int) -> Iterator[Event]:
        key = change.get("index", position)
        call = self.calls.get(key)
        if call is None:
            call = self.calls[key] = _Call(order=len(self.calls))
        function = change.get("function") or {}
        if isinstance(change.get("id"), str) and change["id"] and not call.id:
            call.id = change["id"]
        if isinstance(function.get("name"), str) and function["name"] and not call.name:
            call.name = function["name"]
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments).decode() if isinstance(arguments, dict) else ""
        call.arguments += arguments
        if call.index is None:
            if not call.name:
                return
            if self.mode == "head" and self.held:  # blanks (or a `<thi`) before the call: its text
                self.mode, held, self.held = "text", self.held, ""
                yield from self._text(held)
            call_id = call.id or response._id("toolu_", f"{self.seed}/{call.order}")
            block = {"type": "tool_use", "id": call_id, "name": call.name, "input": {}}
            yield from self._begin("tool", block)
            call.index = self.blocks - 1
            arguments = call.arguments
        if arguments and call.index == self.blocks - 1 and self.open == "tool":
            yield "content_block_delta", delta(call.index, "input_json_delta", partial_json=arguments)

    # -- the end -----------------------------------------------------------------------

    def _delta(self) -> dict[str, Any]:
        stop_reason = response.STOP_REASONS.get(self.finish or "stop", "end_turn")
        if self.refusal:
            stop_reason = "refusal"
        if self.calls and stop_reason == "end_turn":
            stop_reason = "tool_use"
        stop_sequence = None
        if stop_reason == "end_turn":
            stop_sequence = response._matched_stop(self.last, self.params.get("stop_sequences") or ())
            if stop_sequence is not None:
                stop_reason = "stop_sequence"
        data: dict[str, Any] = {"usage": self.usage}
        if self.timings is not None:
            data["timings"] = self.timings
        return {
            "delta": {
                "stop_reason": stop_reason,
                "stop_sequence": stop_sequence,
                "stop_details": None,
                "container": None,
            },
            "usage": response.usage(data),
        }


def _upstream_error(upstream: str, error: Any) -> exceptions.BackendError:
    """An `error` object sent inside the stream (vLLM, llama.cpp)."""
    if not isinstance(error, dict):
        error = {"message": str(error)}
    kind = error.get("type")
    code = error.get("code")
    status = code if isinstance(code, int) and 400 <= code < 600 else 500
    return exceptions.BackendError(
        f"{upstream} failed while streaming: {error.get('message') or error}",
        status=status,
        error_type=kind if kind in ANTHROPIC_ERROR_TYPES else "api_error",
        retryable=status >= 500 or status == 429,
    )
