"""How deep a request's params may nest: `params.MAX_DEPTH` levels, params itself the first."""

from __future__ import annotations

from typing import Any

import pytest

from batchd import exceptions, params
from batchd.params import checks


def nested(levels: int) -> Any:
    """Arrays nested `levels` deep: `nested(1)` is `[]`."""
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def schema(levels: int) -> dict[str, Any]:
    """A tool's input schema, an object whose one property is arrays of arrays of strings,
    that nests exactly `levels` levels."""
    value: dict[str, Any] = {"type": "string"}
    for _ in range(levels - 3):
        value = {"type": "array", "items": value}
    return {"type": "object", "properties": {"a": value}}


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def request(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}], **fields}


def test_nests_deeper_counts_objects_and_arrays_only() -> None:
    assert not checks.nests_deeper("text", 0)
    assert not checks.nests_deeper(nested(3), 3)
    assert checks.nests_deeper(nested(4), 3)
    assert checks.nests_deeper({"a": [{"b": {}}]}, 3)
    assert not checks.nests_deeper({"a": [{"b": "x" * 10}]}, 3)


def test_depth_far_beyond_the_recursion_limit_costs_no_stack() -> None:
    assert checks.nests_deeper(nested(100_000), params.MAX_DEPTH)


@pytest.mark.parametrize("strict", [False, True])
def test_params_at_the_limit_pass_and_one_more_level_is_invalid(strict: bool) -> None:
    # params (1) > tools (2) > the tool (3) > input_schema (4 ...)
    at_limit = request(tools=[{"name": "t", "input_schema": schema(params.MAX_DEPTH - 3)}])
    assert depth(at_limit) == params.MAX_DEPTH
    assert params.prepare(at_limit, strict=strict) is at_limit
    too_deep = request(tools=[{"name": "t", "input_schema": schema(params.MAX_DEPTH - 2)}])
    with pytest.raises(exceptions.InvalidParams) as info:
        params.prepare(too_deep, strict=strict)
    assert info.value.message == f"tools: {params.TOO_DEEP}"
    assert f"at most {params.MAX_DEPTH} levels" in info.value.message


@pytest.mark.parametrize("strict", [False, True])
def test_the_error_names_the_field_nested_too_deeply(strict: bool) -> None:
    tool_use = {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {"a": nested(1000)}}
    deep = request(
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [tool_use]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"}]},
        ]
    )
    with pytest.raises(exceptions.InvalidParams) as info:
        params.prepare(deep, strict=strict)
    assert info.value.message == f"messages: {params.TOO_DEEP}"
    # A field lenient mode would drop is no exception: the depth is checked before anything else.
    with pytest.raises(exceptions.InvalidParams, match=r"^x: Input is nested too deeply"):
        params.prepare(request(x=nested(200)), strict=strict)
