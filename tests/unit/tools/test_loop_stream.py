"""The server-tool loop streamed (`ToolLoop.stream_message`) around a scripted model that streams
its text piece by piece: the events add up to the unstreamed answer, the model's text is sent as it
comes, and each tool's blocks come whole, in the unstreamed order."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from batchd.backends.streaming import Accumulator, Event, message_events
from tests.unit.tools.model import ScriptedModel, message, search_then_answer, tool_use
from tests.unit.tools.test_loop import SEARCH, make_loop, params

CLIENT = {"name": "get_weather", "input_schema": {"type": "object"}}
CITED = 'Llamas: <cite source="1">Llamas live in herds and hum softly.</cite> That is all.'


class StreamingModel(ScriptedModel):
    """The scripted model, streamed: each text block in word-sized `text_delta`s. `log` records,
    in order, each call it answers and each text piece it sends."""

    def __init__(self, script: Any) -> None:
        super().__init__(script)
        self.log: list[str] = []

    async def stream_message(
        self, params: dict[str, Any], *, betas: Sequence[str] = ()
    ) -> AsyncIterator[Event]:
        answer = await self.create_message(params)
        self.log.append(f"call {len(self.seen)}")
        for name, data in message_events(answer):
            text = data.get("delta", {}).get("text") if name == "content_block_delta" else None
            if not text:
                yield name, data
                continue
            for piece in re.findall(r"\s*\S+|\s+", text):
                self.log.append(piece)
                yield name, {**data, "delta": {"type": "text_delta", "text": piece}}


def plain(message: dict[str, Any]) -> dict[str, Any]:
    """`message` with the random ids and nonce-encrypted fields replaced by their order of appearance."""
    text = json.dumps(message)
    seen: dict[str, str] = {}
    for pattern in (r"srvtoolu_\w+", r'"encrypted_(?:content|index)": "([^"]*)"'):
        for match in re.finditer(pattern, text):
            value = match.group(match.lastindex or 0)
            seen.setdefault(value, f"<{len(seen)}>")
    for value, mark in seen.items():
        text = text.replace(value, mark)
    result: dict[str, Any] = json.loads(text)
    return result


async def streamed(
    script: Any, p: dict[str, Any], **loop: Any
) -> tuple[dict[str, Any], list[Event], StreamingModel]:
    model = StreamingModel(script)
    events = [e async for e in make_loop(model, **loop).stream_message(p)]
    acc = Accumulator()
    for event in events:
        acc.add(*event)
    return acc.message, events, model


async def same(
    script: Any, p: dict[str, Any], **loop: Any
) -> tuple[dict[str, Any], list[Event], StreamingModel]:
    """The streamed answer, checked equal to the unstreamed one (ids aside)."""
    unstreamed = await make_loop(ScriptedModel(script), **loop).create_message(p)
    message, events, model = await streamed(script, p, **loop)
    expected = {**unstreamed, "stop_details": None}
    if callable(script):  # it draws a new message id per call
        expected["id"] = message["id"]
    assert plain(message) == plain(expected)
    indices = [d["index"] for n, d in events if n == "content_block_start"]
    assert indices == list(range(len(message["content"])))
    return message, events, model


def texts(events: list[Event]) -> list[str]:
    return [
        d["delta"]["text"]
        for n, d in events
        if n == "content_block_delta" and d["delta"]["type"] == "text_delta"
    ]


async def test_search_then_answer_streams_the_text_and_sends_the_tool_blocks_whole() -> None:
    script = [
        message({"type": "text", "text": "Let me search for it."}, tool_use("web_search", query="llamas")),
        message({"type": "text", "text": "Llamas live in herds, the page says."}),
    ]
    m, events, model = await same(script, params(tools=[SEARCH]))
    assert [b["type"] for b in m["content"]] == ["text", "server_tool_use", "web_search_tool_result", "text"]
    # Both turns' text went out piece by piece, the first before the model was called again.
    assert texts(events) == [
        "Let",
        " me",
        " search",
        " for",
        " it.",
        "Llamas",
        " live",
        " in",
        " herds,",
        " the",
        " page",
        " says.",
    ]
    assert model.log.index(" it.") < model.log.index("call 2")
    starts = [d["content_block"]["type"] for n, d in events if n == "content_block_start"]
    assert starts == ["text", "server_tool_use", "web_search_tool_result", "text"]
    end = events[-2][1]
    assert end["usage"]["server_tool_use"] == {"web_search_requests": 1, "web_fetch_requests": 0}
    assert end["usage"]["input_tokens"] == 200 and end["delta"]["stop_reason"] == "end_turn"


async def test_a_cited_answer_streams_its_text_and_each_quote_once_closed() -> None:
    script = [message(tool_use("web_search", query="llamas")), message({"type": "text", "text": CITED})]
    m, events, _ = await same(script, params(tools=[SEARCH]))
    kinds = [b["type"] for b in m["content"]]
    assert kinds == ["server_tool_use", "web_search_tool_result", "text", "text", "text"]
    assert m["content"][3]["citations"][0]["cited_text"] == "Llamas live in herds and hum softly."
    # The words around the quote went out as they came: before it, and after it one by one.
    assert texts(events) == ["Llamas:", " ", "Llamas live in herds and hum softly.", " That", " is", " all."]


async def test_the_default_search_model_and_its_continuation() -> None:
    await same(search_then_answer, params(tools=[SEARCH]))


async def test_pause_turn_and_a_pending_call() -> None:
    always = lambda p: message(tool_use("web_search", query="llamas"))  # noqa: E731
    first, _, _ = await same(always, params(tools=[SEARCH]), max_iterations=2)
    assert first["stop_reason"] == "pause_turn"
    p = params(tools=[SEARCH])
    p["messages"].append({"role": "assistant", "content": first["content"]})
    second, events, _ = await same(search_then_answer, p)
    assert (
        events[0][0] == "message_start" and events[1][1]["content_block"]["type"] == "web_search_tool_result"
    )
    assert [b["type"] for b in second["content"]] == ["web_search_tool_result", "text"]


async def test_a_server_and_a_client_tool_in_one_turn() -> None:
    both = message(
        {"type": "text", "text": "Two things."},
        tool_use("web_search", query="llamas"),
        tool_use("get_weather", city="Lima"),
    )
    m, _, _ = await same([both], params(tools=[SEARCH, CLIENT]))
    assert m["stop_reason"] == "tool_use"
    assert [b["type"] for b in m["content"]] == ["text", "server_tool_use", "tool_use"]


async def test_thinking_per_iteration_and_two_searches_in_one_turn() -> None:
    script = [
        message(
            {"type": "thinking", "thinking": "I should search.", "signature": "s1"},
            tool_use("web_search", query="llamas"),
            tool_use("web_search", query="camelids"),
        ),
        message(
            {"type": "thinking", "thinking": "Now I know.", "signature": "s2"},
            {"type": "text", "text": "Herds."},
        ),
    ]
    m, _, _ = await same(script, params(tools=[SEARCH]))
    kinds = [b["type"] for b in m["content"]]
    assert kinds == [
        "thinking",
        "server_tool_use",
        "web_search_tool_result",
        "server_tool_use",
        "web_search_tool_result",
        "thinking",
        "text",
    ]


async def test_without_server_tools_the_model_streams_straight_through() -> None:
    p = params(tools=[CLIENT])
    _, events, model = await same([message({"type": "text", "text": "Just text here."})], p)
    assert model.seen == [p] and texts(events) == ["Just", " text", " here."]


@pytest.mark.parametrize("blank", ["", "   "])
async def test_a_blank_text_block_of_an_answer_that_may_cite(blank: str) -> None:
    script = [message(tool_use("web_search", query="llamas")), message({"type": "text", "text": blank})]
    m, _, _ = await same(script, params(tools=[SEARCH]))
    assert [b["type"] for b in m["content"]] == ["server_tool_use", "web_search_tool_result"]


async def test_blank_text_before_a_search_is_dropped_as_unstreamed() -> None:
    """Models often write a blank line before a tool call: the cited answer drops blank blocks."""
    script = [
        message({"type": "text", "text": "\n\n"}, tool_use("web_search", query="llamas")),
        message({"type": "text", "text": CITED}),
    ]
    m, _, _ = await same(script, params(tools=[SEARCH]))
    assert [b["type"] for b in m["content"]][:2] == ["server_tool_use", "web_search_tool_result"]
