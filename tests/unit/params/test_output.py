"""`output_config` / `output_format` checks, and a count_tokens body (`params.prepare_count`)."""

from __future__ import annotations

from typing import Any

import pytest

from batchd import exceptions, params

BASE = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}}


@pytest.mark.parametrize(
    ("extra", "strict", "message"),
    [
        ({"output_config": 3}, False, "output_config: Input should be a valid dictionary"),
        ({"output_config": {"effort": 1}}, False, "output_config.effort: Input should be a valid string"),
        (
            {"output_config": {"format": "json"}},
            False,
            "output_config.format: Input should be a valid dictionary",
        ),
        (
            {"output_config": {"format": {"schema": SCHEMA}}},
            False,
            "output_config.format.type: Field required",
        ),
        (
            {"output_config": {"format": {"type": "xml"}}},
            False,
            "output_config.format.type: Input should be 'json_schema'",
        ),
        ({"output_format": {"type": "json_schema"}}, False, "output_format.schema: Field required"),
        (
            {"output_format": {"type": "json_schema", "schema": []}},
            False,
            "output_format.schema: Input should be a valid dictionary",
        ),
        (
            {"output_config": {"verbosity": 1}},
            True,
            "output_config.verbosity: Extra inputs are not permitted",
        ),
        (
            {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA, "name": "x"}}},
            True,
            "output_config.format.name: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_formats(extra: dict[str, Any], strict: bool, message: str) -> None:
    with pytest.raises(exceptions.InvalidParams) as info:
        params.prepare({**BASE, **extra}, strict=strict)
    assert info.value.message == message


@pytest.mark.parametrize(
    "extra",
    [
        {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}, "effort": "high"}},
        {"output_config": {"format": None}},
        {"output_format": {"type": "json_schema", "schema": SCHEMA}},
        {"output_format": None},
    ],
)
def test_good_formats_pass_unchanged(extra: dict[str, Any]) -> None:
    body = {**BASE, **extra}
    assert params.prepare(body, strict=True) is body


def test_a_count_needs_no_max_tokens_and_drops_what_it_does_not_take() -> None:
    body = {"model": "m", "messages": BASE["messages"], "temperature": 9, "max_tokens": 5, "system": "s"}
    prepared = params.prepare_count(body)
    assert prepared == {
        "model": "m",
        "messages": BASE["messages"],
        "system": "s",
        "max_tokens": params.COUNT_MAX_TOKENS,
    }


def test_a_count_keeps_the_shorthand_and_thinking_budget() -> None:
    body = {
        "model": "m",
        "messages": BASE["messages"],
        "web_search": {"type": "enabled"},
        "thinking": {"type": "enabled"},
    }
    prepared = params.prepare_count(body, default_thinking_budget=2048)
    assert prepared["tools"][0]["name"] == "web_search"
    assert prepared["thinking"]["budget_tokens"] == 2048


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"model": "m", "messages": BASE["messages"], "max_tokens": 5},
            "max_tokens: Extra inputs are not permitted",
        ),
        ({"model": "m"}, "messages: Field required"),
        ({"messages": BASE["messages"]}, "model: Field required"),
    ],
)
def test_a_strict_count_is_the_real_apis(body: dict[str, Any], message: str) -> None:
    with pytest.raises(exceptions.InvalidParams) as info:
        params.prepare_count(body, strict=True)
    assert info.value.message == message


def test_not_both_spellings() -> None:
    both = {
        "output_format": {"type": "json_schema", "schema": SCHEMA},
        "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}},
    }
    with pytest.raises(exceptions.InvalidParams, match=r"^output_format: Both output_format and"):
        params.prepare({**BASE, **both})
