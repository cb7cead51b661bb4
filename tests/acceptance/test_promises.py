"""README promises, checked end to end, that a small change to the source would break without these
tests (issue 12, "claims no test would catch"): each test names the promise and the change it
catches."""

from __future__ import annotations

import contextlib
import itertools
import json
import select
import socket
import time
from collections.abc import Callable
from pathlib import Path

import anthropic
import httpx
import psutil
import pytest

from tests.acceptance.conftest import MODEL, make_client, simple_request, wait_ended
from tests.acceptance.server import ServerProcess
from tests.acceptance.test_cli import run_cli, write_jsonl

LIMIT = 1 << 20  # bytes: the server's max_batch_bytes in the body tests
BODY = 256 * LIMIT  # bytes the client has to send; the server must answer long before
SEND_CHUNK = 64 << 10  # bytes per send
ANSWER_TIMEOUT = 60.0  # seconds; generous, the machine is shared


def peak_rss(pid: int) -> int:
    """The peak resident memory in bytes (VmHWM) of a process and its children, summed (a server
    may serve from worker processes)."""
    total = 0
    for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) * 1024
    return total


def upload(port: int, head: bytes, *, chunked: bool) -> tuple[int, bytes]:
    """Sends `head`, then a BODY-byte body (in HTTP chunks if `chunked`) while watching for an answer.

    Stops sending as soon as the server answers. Returns the body bytes sent by then, and the answer.
    """
    payload = b"x" * SEND_CHUNK
    frame = b"%x\r\n%b\r\n" % (SEND_CHUNK, payload) if chunked else payload
    frames = itertools.chain(itertools.repeat(frame, BODY // SEND_CHUNK), [b"0\r\n\r\n"] if chunked else [])
    sent, answer, pending = 0, b"", memoryview(b"")
    deadline = time.monotonic() + ANSWER_TIMEOUT
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        while b"\r\n\r\n" not in answer and time.monotonic() < deadline:
            if not pending:
                pending = memoryview(next(frames, b""))
            readable, writable, _ = select.select([sock], [sock] if pending else [], [], 1.0)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                answer += data
            elif writable:
                try:
                    pending = pending[sock.send(pending) :]
                except (BrokenPipeError, ConnectionResetError):
                    break
                if not pending:
                    sent += SEND_CHUNK
        sock.settimeout(ANSWER_TIMEOUT)
        answer += _rest_of_answer(sock, answer)
    return min(sent, BODY), answer


def _rest_of_answer(sock: socket.socket, start: bytes) -> bytes:
    """What remains of an answer whose first bytes are `start`, by its Content-Length."""
    head, _, body = start.partition(b"\r\n\r\n")
    lengths = [
        line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    ]
    missing = int(lengths[0]) - len(body) if lengths else 0
    rest = b""
    with contextlib.suppress(OSError):  # the server may close once it has answered
        while len(rest) < missing and (data := sock.recv(missing - len(rest))):
            rest += data
    return rest


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversize_body_is_refused_without_buffering(
    server_factory: Callable[..., ServerProcess], chunked: bool
) -> None:
    """README: "An over-size body is refused with 413 as soon as it passes the limit, without
    buffering the rest." Breaks if the body is read whole before its size is checked: the server
    would wait for all BODY bytes (and hold them) before answering."""
    srv = server_factory(max_batch_bytes=str(LIMIT))
    assert srv.proc is not None
    rss_before = peak_rss(srv.proc.pid)
    length = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % BODY
    head = (
        b"POST /v1/messages/batches HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"x-api-key: test-key\r\n%b\r\n\r\n" % length
    )
    sent, answer = upload(srv.port, head, chunked=chunked)
    assert answer.startswith(b"HTTP/1.1 413 "), (sent, answer[:300])
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["type"] == "error" and body["error"]["type"] == "request_too_large", body
    # Answered after about LIMIT bytes, not BODY: what was sent beyond LIMIT sat in socket buffers.
    assert sent < BODY // 8, f"the 413 came after {sent} of {BODY} bytes"
    growth = peak_rss(srv.proc.pid) - rss_before
    assert growth < BODY // 8, f"the server's peak memory grew by {growth} bytes"
    assert httpx.get(srv.base_url + "/health", timeout=10).status_code == 200


def test_an_errored_result_carries_its_message_where_the_sdk_examples_read_it(
    client: anthropic.Anthropic,
) -> None:
    """README: an errored result carries Anthropic's nested error object, and "batchd also copies
    the message to `result.error.message`". Breaks if that copy is dropped: the SDK's own examples
    read `response.result.error.message`."""
    requests = [
        simple_request("good"),
        {
            "custom_id": "no-max-tokens",
            "params": {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
        },
    ]
    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    wait_ended(client, batch.id, len(requests))
    results = {line.custom_id: line.result for line in client.messages.batches.results(batch.id)}
    errored = results["no-max-tokens"]
    assert errored.type == "errored"
    assert errored.error.type == "error" and errored.error.request_id is None
    assert errored.error.error.type == "invalid_request_error"
    assert errored.error.error.message == "max_tokens: Field required"
    assert errored.error.message == "max_tokens: Field required"  # type: ignore[attr-defined]
    assert errored.error.to_dict() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
        "request_id": None,
        "message": "max_tokens: Field required",
    }


def test_submit_halves_a_batch_the_server_refuses_with_413(
    server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """README: "a batch the server still finds too large (413) is halved and sent again". Breaks if
    `batchd submit` gives up on the 413 instead: the CLI is told a larger limit than the server's,
    so its first batch is refused and only halving gets every request in, each exactly once."""
    srv = server_factory(max_batch_bytes="2KB")
    rows = [simple_request(f"h{i}") for i in range(24)]  # ~3.5 KB as one create body
    requests = write_jsonl(tmp_path / "requests.jsonl", rows)
    out = tmp_path / "out.jsonl"
    result = run_cli(
        srv.base_url,
        "submit",
        str(requests),
        "--max-batch-bytes",
        "1000000",
        "--wait",
        "-o",
        str(out),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    batches = json.loads(result.stdout)
    assert len(batches) > 1, batches
    assert sum(sum(b["request_counts"].values()) for b in batches) == len(rows)
    assert f"{len(rows)} requests split into {len(batches)} batches" in result.stderr
    ids = [json.loads(line)["custom_id"] for line in out.read_text().splitlines()]
    assert ids == [r["custom_id"] for r in rows]  # each exactly once, in file order
    with make_client(srv.base_url) as client:
        listed = client.messages.batches.list(limit=100).data
        assert sorted(b.id for b in listed) == sorted(b["id"] for b in batches)  # no stray batch
        stored = [line.custom_id for b in batches for line in client.messages.batches.results(b["id"])]
    assert stored == ids
