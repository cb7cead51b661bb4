"""Results downloads over several store pages: whole and in order, and a client leaving midway."""

from __future__ import annotations

import socket

import anthropic
import httpx

from batchd.store import layout
from tests.acceptance.conftest import simple_request, wait_ended
from tests.acceptance.server import ServerProcess

N = layout.RESULTS_PAGE * 2 + 7  # three store pages: the response streams page after page


def make_batch(client: anthropic.Anthropic) -> str:
    batch = client.messages.batches.create(
        requests=[simple_request(f"r{i}", "hi") for i in range(N)]  # type: ignore[misc]
    )
    wait_ended(client, batch.id, N, timeout=120)
    return batch.id


def test_download_spans_pages_in_order_and_survives_a_client_leaving(
    client: anthropic.Anthropic, server: ServerProcess
) -> None:
    batch_id = make_batch(client)
    path = f"/v1/messages/batches/{batch_id}/results"

    # A client that reads the first bytes and hangs up: the server stops and stays healthy.
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{server.port}\r\n\r\n".encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")

    with httpx.stream("GET", server.base_url + path, timeout=60) as r:
        assert r.headers["content-type"] == "application/x-jsonl"
        assert "content-length" not in r.headers
        assert r.headers["request-id"].startswith("req_")
        raw = r.read()
    assert raw.endswith(b"\n") and raw.count(b"\n") == N

    ids = [line.custom_id for line in client.messages.batches.results(batch_id)]
    assert ids == [f"r{i}" for i in range(N)]
    assert client.messages.batches.retrieve(batch_id).processing_status == "ended"
    assert "Traceback" not in server.log()
