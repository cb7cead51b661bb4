"""`batchd submit` input checks and splitting, and the progress arithmetic, without a server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchd.cli import progress
from batchd.params import jsonl


def req(custom_id: str, words: int = 1) -> dict[str, object]:
    return {"custom_id": custom_id, "params": {"model": "m", "max_tokens": 5, "text": "w " * words}}


def test_split_respects_count_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(req(f"r{i}", 100)) + "\n" for i in range(10)) + "\n")
    requests = jsonl.read_requests(str(path), 10_000)
    assert len(requests.items) == 10  # blank lines are skipped
    by_count = list(jsonl.split(requests, 4, 10**9))
    assert [len(c) for c in by_count] == [4, 4, 2]
    size = requests.sizes[0]
    by_bytes = list(jsonl.split(requests, 1000, jsonl.ENVELOPE_BYTES + 3 * size))
    assert [len(c) for c in by_bytes] == [3, 3, 3, 1]
    assert [r["custom_id"] for c in by_bytes for r in c] == [f"r{i}" for i in range(10)]


def test_encoded_size_is_an_upper_bound() -> None:
    r = {"custom_id": "ü", "params": {"text": "日本語 \U0001f600"}}
    assert jsonl.encoded_size(r) >= len(json.dumps(r, ensure_ascii=False).encode())


def test_problems_are_capped_in_the_report(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("nope\n" * 30)
    with pytest.raises(jsonl.BadInput) as info:
        jsonl.read_requests(str(path), 10_000)
    lines = info.value.lines()
    assert lines[0].startswith(f"{path}:1: not valid JSON")
    assert len(lines) == jsonl.MAX_REPORTED + 1 and lines[-1] == "… and 10 more problems"


def test_rate_and_eta() -> None:
    rate = progress.Rate()
    assert rate.per_second() is None and rate.eta(10) is None
    rate.add(0, 100.0)
    rate.add(50, 110.0)
    assert rate.per_second() == 5.0 and rate.eta(25) == 5.0 and rate.eta(0) == 0.0
    c = {"processing": 25, "succeeded": 40, "errored": 10, "canceled": 0, "expired": 0}
    line = progress.summary_line(c, rate)
    assert line == "50/75 done · 40 succeeded · 10 errored · 25 processing · 5.0 req/s · ETA 00:05"
