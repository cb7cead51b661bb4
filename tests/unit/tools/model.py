"""A scripted model for the loop's unit tests: a real Backend answering from a script.

It records every request it gets, so a test checks what the model saw. The default script is the
search-and-answer model of the acceptance upstreams: call `web_search` while the conversation has
no tool result, otherwise answer quoting the last result.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from batchd.config.routes import BackendKind
from batchd.tools.web_search.base import SearchHit, SearchQuery

_ids = itertools.count(1)


def tool_use(name: str, **input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"call_{next(_ids)}", "name": name, "input": input}


def message(*content: dict[str, Any], stop: str | None = None, tokens: int = 10) -> dict[str, Any]:
    uses = any(b["type"] == "tool_use" for b in content)
    return {
        "id": f"msg_{next(_ids)}",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": list(content),
        "stop_reason": stop or ("tool_use" if uses else "end_turn"),
        "stop_sequence": None,
        "usage": {"input_tokens": tokens * 10, "output_tokens": tokens, "cache_read_input_tokens": 1},
    }


def last_tool_result(params: dict[str, Any]) -> str | None:
    for m in reversed(params["messages"]):
        if m["role"] == "user" and isinstance(m["content"], list):
            for b in m["content"]:
                if b.get("type") == "tool_result":
                    return str(b["content"])
    return None


def search_then_answer(params: dict[str, Any]) -> dict[str, Any]:
    result = last_tool_result(params)
    if result is None:
        return message({"type": "text", "text": "Let me search."}, tool_use("web_search", query="llamas"))
    return message({"type": "text", "text": "Found: " + result[-60:]})


class ScriptedModel:
    """A Backend whose answers come from `script(params)` (or a list of answers in turn)."""

    kind = BackendKind.OPENAI
    instant = None

    def __init__(self, script: Callable[[dict[str, Any]], dict[str, Any]] | Sequence[dict[str, Any]]) -> None:
        self.script = script
        self.seen: list[dict[str, Any]] = []

    async def create_message(
        self, params: dict[str, Any], *, attempt: int = 1, betas: Any = ()
    ) -> dict[str, Any]:
        self.seen.append(params)
        if callable(self.script):
            return self.script(params)
        return self.script[len(self.seen) - 1]

    async def aclose(self) -> None:
        pass


class Corpus:
    """A SearchProvider over a list of hits (a real provider: filters by substring, honours max_results)."""

    name = "corpus"

    def __init__(self, hits: Sequence[SearchHit], fail: Exception | None = None) -> None:
        self.hits = list(hits)
        self.fail = fail
        self.queries: list[SearchQuery] = []

    async def search(self, q: SearchQuery) -> list[SearchHit]:
        self.queries.append(q)
        if self.fail is not None:
            raise self.fail
        words = q.query.lower().split()
        found = [h for h in self.hits if any(w in (h.title + " " + h.text).lower() for w in words)]
        return found[: q.max_results]

    async def health(self) -> str | None:
        return None

    async def aclose(self) -> None:
        pass
