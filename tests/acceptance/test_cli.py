"""The client commands as a user runs them: subprocesses against a real `batchd serve`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.acceptance.conftest import make_client, simple_request, wait_ended
from tests.acceptance.server import ServerProcess, child_env, free_port

CLI_TIMEOUT = 120.0  # seconds; generous, the machine is shared


def run_cli(base_url: str, *args: str, api_key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"ANTHROPIC_BASE_URL": base_url}
    if api_key:
        env["ANTHROPIC_API_KEY"] = api_key
    return subprocess.run(
        [sys.executable, "-m", "batchd", *args],
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("batchd: ") and result.stderr.count("\n") == 1, result.stderr
    assert needle in result.stderr, result.stderr


def test_submit_wait_writes_results(server: ServerProcess, tmp_path: Path) -> None:
    rows = [simple_request(f"q{i}") for i in range(5)]
    rows.append(simple_request("bad", "fail please @sim:error=overloaded"))
    requests = write_jsonl(tmp_path / "requests.jsonl", rows)
    out = tmp_path / "results.jsonl"
    result = run_cli(server.base_url, "submit", str(requests), "--wait", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    (batch,) = json.loads(result.stdout)
    assert batch["processing_status"] == "ended"
    assert batch["request_counts"] == {
        "processing": 0, "succeeded": 5, "errored": 1, "canceled": 0, "expired": 0,
    }  # fmt: skip
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["custom_id"] for r in lines) == sorted(r["custom_id"] for r in rows)
    assert "6/6 done" in result.stderr and "results written to" in result.stderr


def test_submit_splits_to_the_server_limits(
    server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    srv = server_factory(max_requests="3", max_batch_bytes="2KB")
    rows = [simple_request(f"s{i}") for i in range(7)]
    requests = write_jsonl(tmp_path / "requests.jsonl", rows)
    out = tmp_path / "out.jsonl"
    result = run_cli(srv.base_url, "submit", str(requests), "--wait", "-o", str(out), "--json")
    assert result.returncode == 0, result.stderr
    batches = json.loads(result.stdout)
    assert [sum(b["request_counts"].values()) for b in batches] == [3, 3, 1]
    assert "7 requests split into 3 batches" in result.stderr
    ids = [json.loads(line)["custom_id"] for line in out.read_text().splitlines()]
    assert ids == [f"s{i}" for i in range(7)]  # batches in file order, each in create order

    # A line that could never fit the server's per-batch byte limit is refused before sending.
    big = write_jsonl(tmp_path / "big.jsonl", [rows[0], simple_request("huge", "word " * 1000)])
    result = run_cli(srv.base_url, "submit", str(big))
    assert result.returncode == 2
    assert f"{big}:2: request is" in result.stderr and "more than a batch may hold" in result.stderr


def test_bad_input_is_reported_with_line_numbers(server: ServerProcess, tmp_path: Path) -> None:
    with make_client(server.base_url) as client:
        before = len(client.messages.batches.list(limit=1000).data)
    bad = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            simple_request("ok"),
            "{not json",
            simple_request("ok"),
            {"custom_id": "x"},
            {"custom_id": "has space", "params": {}},
            {"custom_id": "y", "params": []},
            "[1, 2]",
        ],
    )
    result = run_cli(server.base_url, "submit", str(bad))
    assert result.returncode == 2, result.stderr
    err = result.stderr
    assert f"{bad}:2: not valid JSON" in err
    assert f"{bad}:3: duplicate custom_id 'ok' (first on line 1)" in err
    assert f"{bad}:4: missing field params" in err
    assert f"{bad}:5: custom_id must be" in err
    assert f"{bad}:6: params must be a JSON object" in err
    assert f"{bad}:7: each line must be a JSON object" in err
    assert "nothing was sent" in err and "Traceback" not in err
    with make_client(server.base_url) as client:
        assert len(client.messages.batches.list(limit=1000).data) == before  # nothing was sent


def test_ls_show_results_cancel_delete(server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    # One request at a time, 2 s each: the slow batch cannot end by itself while the test runs.
    server = server_factory(concurrency="1", claim_chunk="1")
    with make_client(server.base_url) as client:
        done = client.messages.batches.create(requests=[simple_request(f"d{i}") for i in range(3)])  # type: ignore[list-item]
        wait_ended(client, done.id, 3)
        slow = client.messages.batches.create(
            requests=[simple_request(f"w{i}", "wait @sim:delay=2") for i in range(100)]  # type: ignore[misc]
        )
    url = server.base_url

    listed = json.loads(run_cli(url, "ls", "--json", "--limit", "5").stdout)
    assert [b["id"] for b in listed] == [slow.id, done.id]
    table = run_cli(url, "ls", "--limit", "5")
    assert table.returncode == 0 and done.id in table.stdout and "3 succeeded" in table.stdout

    shown = run_cli(url, "show", done.id, "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["id"] == done.id
    assert "processing_status    ended" in run_cli(url, "show", done.id).stdout

    out = tmp_path / "r.jsonl"
    got = run_cli(url, "results", done.id, "-o", str(out))
    assert got.returncode == 0, got.stderr
    assert sorted(json.loads(x)["custom_id"] for x in out.read_text().splitlines()) == ["d0", "d1", "d2"]
    assert len(run_cli(url, "results", done.id).stdout.splitlines()) == 3  # to stdout

    # State errors: one line, exit 1.
    assert_one_line_error(run_cli(url, "results", slow.id), 1, "has not ended yet")
    assert_one_line_error(run_cli(url, "delete", slow.id), 1, "400 invalid_request_error")

    canceled = run_cli(url, "cancel", slow.id, "--json")
    assert canceled.returncode == 0, canceled.stderr
    assert json.loads(canceled.stdout)["processing_status"] in ("canceling", "ended")
    watched = run_cli(url, "watch", slow.id, "--json", "--interval", "0.2")
    assert watched.returncode == 0, watched.stderr
    final = json.loads(watched.stdout)
    assert final["processing_status"] == "ended" and final["request_counts"]["canceled"] > 0

    deleted = run_cli(url, "delete", done.id, "--json")
    assert deleted.returncode == 0 and json.loads(deleted.stdout)["type"] == "message_batch_deleted"
    assert_one_line_error(run_cli(url, "show", done.id), 4, "404 not_found_error")


def test_connection_and_auth_errors(server_factory: Callable[..., ServerProcess]) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    assert_one_line_error(run_cli(closed, "ls"), 3, f"cannot reach {closed}")

    srv = server_factory(api_keys="right-key:team-a")
    assert_one_line_error(run_cli(srv.base_url, "ls", api_key="wrong"), 5, "401 authentication_error")
    ok = run_cli(srv.base_url, "ls", "--json", api_key="right-key")
    assert ok.returncode == 0 and json.loads(ok.stdout) == []


def test_usage_errors_exit_2(server: ServerProcess, tmp_path: Path) -> None:
    requests = write_jsonl(tmp_path / "r.jsonl", [simple_request("a")])
    assert_one_line_error(
        run_cli(server.base_url, "submit", str(requests), "--out", "x"), 2, "--out needs --wait"
    )
    missing = run_cli(server.base_url, "submit", str(tmp_path / "missing.jsonl"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_submit_prints_ids_for_scripts(server: ServerProcess, tmp_path: Path) -> None:
    requests = write_jsonl(tmp_path / "r.jsonl", [simple_request("a"), simple_request("b")])
    result = run_cli(server.base_url, "submit", str(requests))
    assert result.returncode == 0, result.stderr
    (batch_id,) = result.stdout.split()
    with make_client(server.base_url) as client:
        assert wait_ended(client, batch_id, 2).request_counts.succeeded == 2


def test_submit_with_an_idempotency_key_runs_again_without_a_second_batch(
    server: ServerProcess, tmp_path: Path
) -> None:
    requests = write_jsonl(tmp_path / "r.jsonl", [simple_request("a"), simple_request("b")])
    first = run_cli(server.base_url, "submit", str(requests), "--idempotency-key", "nightly-1")
    again = run_cli(server.base_url, "submit", str(requests), "--idempotency-key", "nightly-1")
    fresh = run_cli(server.base_url, "submit", str(requests))
    assert first.returncode == again.returncode == fresh.returncode == 0, (first.stderr, fresh.stderr)
    assert first.stdout.split() == again.stdout.split() != fresh.stdout.split()
    other = write_jsonl(tmp_path / "other.jsonl", [simple_request("c")])
    clash = run_cli(server.base_url, "submit", str(other), "--idempotency-key", "nightly-1")
    assert clash.returncode != 0 and "nightly-1" in clash.stderr, clash.stderr
