"""`ToolLoop.count_tokens`: the inner backend counts what the model would be shown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batchd.backends.simulator import SimulatedBackend
from batchd.tools.loop import ToolLoop
from batchd.tools.tokens import Tokens
from tests.unit.tools.model import Corpus

SEARCH = {"type": "web_search_20250305", "name": "web_search"}
CLIENT = {"name": "get", "input_schema": {"type": "object"}}


class Counting(SimulatedBackend):
    """The simulator, keeping the params it was asked to count."""

    def __init__(self) -> None:
        super().__init__()
        self.counted: list[dict[str, Any]] = []

    async def count_tokens(self, params: dict[str, Any], *, betas: Sequence[str] = ()) -> int:
        self.counted.append(params)
        return await super().count_tokens(params, betas=betas)


def loop(inner: Counting) -> ToolLoop:
    return ToolLoop(inner, provider=Corpus([]), fetcher=None, tokens=Tokens(b"k" * 32), max_iterations=3)


def params(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "news"}], **extra}


async def test_without_server_tools_the_params_go_through() -> None:
    inner = Counting()
    p = params(tools=[CLIENT])
    assert await loop(inner).count_tokens(p) == await SimulatedBackend().count_tokens(p)
    assert inner.counted == [p] and inner.counted[0] is p


async def test_server_tools_are_counted_as_the_function_tools_offered() -> None:
    inner = Counting()
    await loop(inner).count_tokens(params(tools=[SEARCH, CLIENT]))
    (shown,) = inner.counted
    search, client = shown["tools"]
    assert search["name"] == "web_search" and "type" not in search and "input_schema" in search
    assert client == CLIENT
