"""`batchd submit` with an OpenAI batch input file: the second wire, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai

from tests.acceptance.server import ServerProcess
from tests.acceptance.test_cli import run_cli, write_jsonl


def chat_line(custom_id: str, text: str = "Hello there", url: str = "/v1/chat/completions") -> dict[str, Any]:
    body = {"model": "gpt-4o-mini", "max_tokens": 16, "messages": [{"role": "user", "content": text}]}
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def test_submit_wait_uploads_creates_and_writes_both_files(server: ServerProcess, tmp_path: Path) -> None:
    rows = [chat_line(f"o{i}") for i in range(5)]
    rows.append(chat_line("bad", "fail please @sim:error=invalid_request"))
    source = write_jsonl(tmp_path / "openai.jsonl", rows)
    out = tmp_path / "results.jsonl"
    result = run_cli(server.base_url, "submit", str(source), "--wait", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    (batch,) = json.loads(result.stdout)
    assert batch["id"].startswith("batch_") and batch["object"] == "batch"
    assert batch["status"] == "completed"
    assert batch["request_counts"] == {"total": 6, "completed": 5, "failed": 1}
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["custom_id"] for r in lines) == sorted(r["custom_id"] for r in rows)
    by_id = {r["custom_id"]: r for r in lines}
    assert by_id["o0"]["response"]["status_code"] == 200
    assert by_id["o0"]["response"]["body"]["object"] == "chat.completion"
    bad = by_id["bad"]
    assert bad["response"] is None or bad["response"]["status_code"] >= 400
    assert "6/6 done" in result.stderr and "results written to" in result.stderr

    # The batch is the OpenAI wire's: the official openai SDK sees it, with the same files.
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="k", _strict_response_validation=True)
    seen = client.batches.retrieve(batch["id"])
    assert seen.output_file_id == batch["output_file_id"] and seen.error_file_id == batch["error_file_id"]
    assert seen.input_file_id == batch["input_file_id"]
    assert client.files.retrieve(seen.input_file_id).filename == "openai.jsonl"


def test_submit_splits_to_the_line_limit(server: ServerProcess, tmp_path: Path) -> None:
    rows = [chat_line(f"s{i}") for i in range(7)]
    source = write_jsonl(tmp_path / "split.jsonl", rows)
    out = tmp_path / "out.jsonl"
    result = run_cli(
        server.base_url, "submit", str(source), "--max-requests", "3", "--wait", "-o", str(out), "--json"
    )
    assert result.returncode == 0, result.stderr
    batches = json.loads(result.stdout)
    assert [b["request_counts"]["total"] for b in batches] == [3, 3, 1]
    assert "7 requests split into 3 batches" in result.stderr
    assert sorted(json.loads(line)["custom_id"] for line in out.read_text().splitlines()) == sorted(
        r["custom_id"] for r in rows
    )


def test_a_bad_openai_file_is_refused_before_anything_is_sent(server: ServerProcess, tmp_path: Path) -> None:
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="k")
    before = {f.id for f in client.files.list()}
    rows: list[Any] = [
        chat_line("a"),
        chat_line("a"),  # a repeated custom_id
        chat_line("b", url="/v1/embeddings"),  # another endpoint than the first line's
        "{not json",
        {**chat_line("c"), "method": "GET"},
    ]
    source = write_jsonl(tmp_path / "bad.jsonl", rows)
    result = run_cli(server.base_url, "submit", str(source))
    assert result.returncode == 2, result.stderr
    assert f"{source}:2: custom_id 'a' repeats line 1" in result.stderr
    assert f"{source}:3: url '/v1/embeddings' differs" in result.stderr
    assert f"{source}:4: not valid JSON" in result.stderr
    assert f"{source}:5: method must be" in result.stderr
    assert "nothing was sent" in result.stderr
    assert {f.id for f in client.files.list()} == before
