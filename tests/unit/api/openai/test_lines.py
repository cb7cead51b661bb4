"""An input file's lines checked before a batch is created (api/openai/lines.py)."""

from __future__ import annotations

from typing import Any

import orjson

from batchd.api.openai import lines

CHAT = "/v1/chat/completions"


def line(custom_id: str = "a", **changes: Any) -> bytes:
    value: dict[str, Any] = {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": {"model": "m"}}
    value.update(changes)
    return orjson.dumps(value)


def codes(data: bytes, endpoint: str = CHAT, **kwargs: Any) -> list[tuple[str, int | None, str | None]]:
    return [(e["code"], e["line"], e["param"]) for e in lines.check(data, endpoint, **kwargs).errors]


def test_good_lines_are_kept_byte_for_byte_and_blank_lines_skipped() -> None:
    data = line("a") + b"\r\n\n   \n" + line("b") + b"\n"
    checked = lines.check(data, CHAT)
    assert checked.errors == [] and checked.custom_ids == ["a", "b"] and checked.model == "m"
    assert checked.params == [line("a"), line("b")]


def test_every_problem_is_listed_by_physical_line() -> None:
    data = b"\n".join(
        [
            line("a"),
            b"{oops",
            b"[1]",
            line("a"),
            line("c", url="/v1/embeddings"),
            line("d", body={"model": "other"}),
            line("e", method="GET"),
            line("f", body=[]),
            line("g", body={"model": "m", "stream": True}),
            orjson.dumps({"method": "POST"}),
            line(""),
            line("h", body={}),
        ]
    )
    assert codes(data) == [
        ("invalid_json_line", 2, None),
        ("invalid_json_line", 3, None),
        ("duplicate_custom_id", 4, "custom_id"),
        ("url_mismatch", 5, "url"),
        ("mismatched_model", 6, "body.model"),
        ("invalid_value", 7, "method"),
        ("invalid_value", 8, "body"),
        ("invalid_value", 9, "body.stream"),
        ("missing_required_parameter", 10, "custom_id"),
        ("invalid_value", 11, "custom_id"),
        ("missing_required_parameter", 12, "body.model"),
    ]
    assert lines.check(data, CHAT).params == []  # a failed file runs nothing


def test_empty_and_too_large_files() -> None:
    assert codes(b"") == [("empty_file", None, None)]
    assert codes(b"\n \n") == [("empty_file", None, None)]
    many = b"\n".join(line(str(i)) for i in range(4))
    assert codes(many, max_tasks=4) == []
    assert codes(many, max_tasks=3) == [("too_many_tasks", None, None)]
    assert codes(many + b"\n{bad", max_tasks=4) == [("too_many_tasks", None, None)]


def test_embedding_inputs_count_toward_the_limit() -> None:
    def embed(i: int, inputs: Any) -> bytes:
        return line(str(i), url="/v1/embeddings", body={"model": "e", "input": inputs})

    assert codes(embed(1, ["a", "b"]) + b"\n" + embed(2, "c"), "/v1/embeddings", max_tasks=3) == []
    assert codes(embed(1, ["a", "b"]) + b"\n" + embed(2, ["c", "d"]), "/v1/embeddings", max_tasks=3) == [
        ("too_many_tasks", None, None)
    ]
    assert codes(embed(1, [1, 2, 3]), "/v1/embeddings", max_tasks=1) == []  # one input of tokens


def test_only_the_first_errors_are_listed() -> None:
    data = b"\n".join([b"{"] * (lines.MAX_ERRORS + 5))
    assert len(lines.check(data, CHAT).errors) == lines.MAX_ERRORS
