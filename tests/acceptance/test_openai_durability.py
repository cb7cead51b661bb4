"""The OpenAI wire's batches keep batchd's promises: `kill -9` mid-run leaves exactly one output
line per input line, mid-upload no file, and on PostgreSQL two `batchd serve` processes share every
file and batch (one takes the upload, the other creates and runs the batch, the first serves its
output)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.acceptance.openai_wire import CHAT, chat_line, jsonl, make_openai, wait_terminal
from tests.acceptance.server import ServerProcess

N = 400


def output_ids(client: object, file_id: str) -> list[str]:
    content = client.files.content(file_id).read()  # type: ignore[attr-defined]
    lines = [orjson.loads(line) for line in content.splitlines()]
    assert all(line["response"]["status_code"] == 200 for line in lines)
    return [line["custom_id"] for line in lines]


def test_kill_9_mid_run_loses_and_repeats_nothing(tmp_path: Path) -> None:
    env = {"BATCHD_SIM_LATENCY": "20ms", "BATCHD_CONCURRENCY": "8", "BATCHD_LEASE": "2s"}
    srv = ServerProcess(tmp_path / "data", env).start()
    try:
        with make_openai(srv.base_url) as client:
            file_id = client.files.create(
                file=("in.jsonl", jsonl([chat_line(f"k{i}") for i in range(N)])), purpose="batch"
            ).id
            batch = client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
            deadline = time.monotonic() + 30
            while (counts := client.batches.retrieve(batch.id).request_counts) and counts.completed < 20:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert counts.completed < N, "the batch ended before the kill: make it longer"
        srv.kill9()
        srv.start()
        with make_openai(srv.base_url) as client:
            assert client.files.retrieve(file_id).bytes > 0  # the upload survived too
            done = wait_terminal(client, batch.id, timeout=60)
            assert done.status == "completed" and done.request_counts is not None
            assert (done.request_counts.total, done.request_counts.completed) == (N, N)
            assert done.output_file_id is not None and done.error_file_id is None
            ids = output_ids(client, done.output_file_id)
        assert sorted(ids) == sorted(f"k{i}" for i in range(N))
    finally:
        srv.stop()


@pytest.mark.postgres
def test_two_processes_on_postgresql_share_files_and_batches(database: str, tmp_path: Path) -> None:
    env = {"BATCHD_DATABASE_URL": database, "BATCHD_SIM_LATENCY": "5ms"}
    first = ServerProcess(tmp_path / "a", env).start()
    second = ServerProcess(tmp_path / "b", env).start()
    try:
        with make_openai(first.base_url) as a, make_openai(second.base_url) as b:
            data = jsonl([chat_line(f"p{i}") for i in range(N)])
            file_id = a.files.create(file=("in.jsonl", data), purpose="batch").id
            assert b.files.content(file_id).read() == data
            batch = b.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
            assert batch.status == "in_progress"
            done = wait_terminal(a, batch.id, timeout=60)
            assert done.status == "completed" and done.output_file_id is not None
            assert sorted(output_ids(a, done.output_file_id)) == sorted(f"p{i}" for i in range(N))
            assert b.batches.retrieve(batch.id).model_dump() == done.model_dump()
            assert done.output_file_id in [f.id for f in b.files.list(purpose="batch_output")]
    finally:
        first.stop()
        second.stop()


def test_kill_9_mid_upload_leaves_no_file(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data").start()
    sent, killed = threading.Event(), threading.Event()

    def body() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n\r\n'
        for i in range(200):
            yield b"x" * (1 << 20)
            if i == 20:  # 21 MiB in: some chunks are in the store
                sent.set()
                killed.wait(30)  # the server dies meanwhile

    def upload() -> None:
        headers = {"content-type": "multipart/form-data; boundary=b", "authorization": "Bearer k"}
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(srv.base_url + "/v1/files", content=body(), headers=headers, timeout=60)

    thread = threading.Thread(target=upload, daemon=True)
    try:
        thread.start()
        assert sent.wait(30)
        time.sleep(0.5)
        srv.kill9()
        killed.set()
        srv.start()
        with make_openai(srv.base_url) as client:
            assert list(client.files.list()) == []  # the cut upload is never listed
        conn = sqlite3.connect(f"file:{srv.data_dir / 'batchd.db'}?mode=ro", uri=True)
        try:  # its rows wait for the sweep (an hour later), unlisted
            assert conn.execute("SELECT count(*) FROM openai_files WHERE complete = 0").fetchone()[0] == 1
        finally:
            conn.close()
    finally:
        killed.set()
        thread.join(10)
        srv.stop()
