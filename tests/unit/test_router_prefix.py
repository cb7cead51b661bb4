"""Prefix-aware ordering of a claimed chunk."""

from __future__ import annotations

from typing import Any

import orjson

from batchd import models
from batchd.backends import prefix


def claimed(i: int, **params: Any) -> models.ClaimedRequest:
    body = {"model": "m", "max_tokens": 5, **params}
    return models.ClaimedRequest("msgbatch_x", i, f"r{i}", orjson.dumps(body), 0, 1e12)


def question(system: str, text: str) -> dict[str, Any]:
    return {"system": system, "messages": [{"role": "user", "content": text}]}


def test_leaders_first_then_groups_by_system() -> None:
    reqs = [claimed(i, **question(f"doc {i % 3}", f"question {i}")) for i in range(9)]
    assert [r.index for r in prefix.order(reqs)] == [0, 1, 2, 3, 6, 4, 7, 5, 8]


def test_leading_messages_and_blocks_are_the_prefix() -> None:
    doc = {"type": "text", "text": "a long shared document"}
    other = {"type": "text", "text": "another document"}
    reqs = [
        claimed(0, messages=[{"role": "user", "content": [doc, {"type": "text", "text": "q0"}]}]),
        claimed(1, messages=[{"role": "user", "content": [other, {"type": "text", "text": "q1"}]}]),
        claimed(2, messages=[{"role": "user", "content": [doc, {"type": "text", "text": "q2"}]}]),
        claimed(
            3,
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "x"},
                {"role": "user", "content": "q3"},
            ],
        ),
    ]
    assert [r.index for r in prefix.order(reqs)] == [0, 1, 3, 2]


def test_keys() -> None:
    a = claimed(0, **question("s", "one"))
    b = claimed(1, **question("s", "two"))
    c = claimed(2, tools=[{"name": "t", "input_schema": {}}], **question("s", "one"))
    assert prefix.prefix_key(a.params) == prefix.prefix_key(b.params) != prefix.prefix_key(c.params)
    assert prefix.prefix_key(b"not json") != prefix.prefix_key(b"[1]")


def test_small_or_uniform_chunks_are_left_alone() -> None:
    same = [claimed(i, **question("s", str(i))) for i in range(5)]
    assert prefix.order(same) == same
    distinct = [claimed(i, **question(str(i), "q")) for i in range(5)]
    assert prefix.order(distinct) == distinct
