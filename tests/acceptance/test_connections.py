"""Slow, oversized and idle connections against a real `batchd serve`, over raw loopback sockets:
the header-size limit (431), the header and body deadlines (a 408 in the error envelope), idle
connections closed, the connection cap and a low open-file limit, and the serve process's life
(its worker dies with it; signals)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.acceptance.conftest import make_client, simple_request
from tests.acceptance.server import ServerProcess, child_env

CREATE = "/v1/messages/batches"
MB = 1024 * 1024


def processes(srv: ServerProcess) -> list[psutil.Process]:
    """The server's process tree: `batchd serve` and what it started."""
    assert srv.proc is not None
    main = psutil.Process(srv.proc.pid)
    return [main, *main.children(recursive=True)]


def open_fds(srv: ServerProcess) -> int:
    return sum(p.num_fds() for p in processes(srv))


def rss(srv: ServerProcess) -> int:
    return sum(p.memory_info().rss for p in processes(srv))


def connect(srv: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", srv.port), timeout=10)


def request_head(method: str, path: str, extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: k\r\n{extra}".encode()


def read_response(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the server sends within `timeout`, and whether it then closed the connection."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return data, False
    except ConnectionResetError:
        pass
    return data, True


def wait_closed(socks: list[socket.socket], within: float) -> list[socket.socket]:
    """Waits up to `within` seconds for the server to close each socket; the ones still open."""
    deadline = time.monotonic() + within
    pending = list(socks)
    while pending and time.monotonic() < deadline:
        readable, _, _ = select.select(pending, [], [], 0.1)
        for sock in readable:
            with contextlib.suppress(ConnectionResetError):
                if sock.recv(65536):
                    continue  # an answer: the server closes after it, or never
            pending.remove(sock)
    return pending


@contextlib.contextmanager
def held(sockets: list[socket.socket]) -> Iterator[list[socket.socket]]:
    try:
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def health_within(srv: ServerProcess, timeout: float) -> float:
    """Seconds until GET /health answers 200 on a fresh connection (fails after `timeout`)."""
    started = time.monotonic()
    assert httpx.get(srv.base_url + "/health", timeout=timeout).status_code == 200
    return time.monotonic() - started


class Prober(threading.Thread):
    """GET /health on a fresh connection every 0.1 s: the latency of each answer, or its failure."""

    def __init__(self, srv: ServerProcess) -> None:
        super().__init__(daemon=True)
        self.srv, self.stop, self.latencies, self.failures = srv, threading.Event(), [0.0], 0

    def run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                self.latencies.append(health_within(self.srv, 5.0))
            except (httpx.HTTPError, AssertionError):
                self.failures += 1


def test_oversized_headers_get_431_and_memory_stays_bounded(
    server_factory: Callable[..., ServerProcess],
) -> None:
    srv = server_factory()
    baseline, peak, answers = rss(srv), 0, []

    def attack() -> None:  # a 50 MB header, sent until the server stops reading it
        with connect(srv) as sock:
            sock.settimeout(30)
            sock.sendall(request_head("GET", "/health") + b"X-Big: ")
            try:
                for _ in range(50 * MB // (256 * 1024)):
                    sock.sendall(b"a" * (256 * 1024))
                sock.sendall(b"\r\n\r\n")
            except OSError:
                pass  # the server answered and closed
            answers.append(read_response(sock, 30)[0])

    prober = Prober(srv)
    prober.start()
    attackers = [threading.Thread(target=attack) for _ in range(5)]
    for thread in attackers:
        thread.start()
    while any(t.is_alive() for t in attackers):
        peak = max(peak, rss(srv))
        time.sleep(0.02)
    prober.stop.set()
    prober.join()

    assert [a.split(b"\r\n", 1)[0] for a in answers] == [b"HTTP/1.1 431 Request Header Fields Too Large"] * 5
    assert peak - baseline < 100 * MB, f"the server grew by {(peak - baseline) / MB:.0f} MB"
    assert prober.failures == 0 and max(prober.latencies) < 2.0, prober.latencies


def test_slow_headers_are_cut_at_the_header_deadline(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(header_timeout="1s")
    with held([connect(srv) for _ in range(30)]) as socks:
        for sock in socks:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started, pending = time.monotonic(), list(socks)
        while pending and time.monotonic() - started < 5:  # one header byte per socket every 0.2 s
            for sock in pending:
                with contextlib.suppress(OSError):
                    sock.send(b"X")
            pending = wait_closed(pending, 0.2)
        assert not pending, f"{len(pending)} of 30 slow senders still open after 5 s (header_timeout 1s)"
        assert time.monotonic() - started > 0.8  # cut by the deadline, not at once
    assert health_within(srv, 2.0) < 2.0


def test_idle_connections_are_closed(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(header_timeout="1s")
    started = time.monotonic()
    with held([connect(srv) for _ in range(50)]) as silent, held([connect(srv)]) as (used,):
        used.sendall(request_head("GET", "/health") + b"\r\n")  # a keep-alive connection after one request
        assert read_response(used, 0.5)[0].startswith(b"HTTP/1.1 200")
        still_open = wait_closed([*silent, used], 5.0)
        assert not still_open, f"{len(still_open)} of 51 idle connections still open after 5 s"
        assert time.monotonic() - started > 0.8


def test_a_stalled_body_gets_408_and_nothing_is_stored(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(body_timeout="1s")
    body = json.dumps({"requests": [simple_request("a")]}).encode()
    with connect(srv) as sock:
        head = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        sock.sendall(request_head("POST", CREATE, head) + body[:20])
        started = time.monotonic()
        response, closed = read_response(sock, 10)
        waited = time.monotonic() - started
    head_text, _, payload = response.partition(b"\r\n\r\n")
    assert head_text.startswith(b"HTTP/1.1 408"), response
    assert b"\r\nconnection: close" in head_text.lower() and closed
    error = json.loads(payload)
    assert error["type"] == "error" and error["error"]["type"] == "timeout_error", error
    assert error["request_id"] and error["request_id"].encode() in head_text
    assert 0.9 < waited < 5.0
    with make_client(srv.base_url) as client:
        assert client.messages.batches.list().data == []


def test_the_body_deadline_grows_with_the_declared_size(server_factory: Callable[..., ServerProcess]) -> None:
    """body_timeout 1s, plus 1 s per declared MB: a 3 MB body may pause 2 s, not 5 s."""
    srv = server_factory(body_timeout="1s")
    requests = [simple_request(f"r{i}", "x" * 35_000) for i in range(100)]
    body = json.dumps({"requests": requests}).encode()
    assert 3 * MB < len(body) < 4 * MB  # a budget of 4 to 5 s
    head = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    for pause, status in ((2.0, b"200"), (5.5, b"408")):
        with connect(srv) as sock:
            sock.sendall(request_head("POST", CREATE, head) + body[:1000])
            time.sleep(pause)
            with contextlib.suppress(OSError):  # after a 408 the server no longer reads
                sock.sendall(body[1000:])
            response, _ = read_response(sock, 10)
        assert response.startswith(b"HTTP/1.1 " + status), (pause, response[:300])
    with make_client(srv.base_url) as client:
        assert len(client.messages.batches.list().data) == 1


def test_the_connection_cap_bounds_descriptors(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(max_connections="20", header_timeout="1s")
    baseline = open_fds(srv)
    with held([connect(srv) for _ in range(100)]):
        most = 0
        for _ in range(30):  # 1.5 s: the first wave of 20 is accepted, the rest queue in the kernel
            most = max(most, open_fds(srv))
            time.sleep(0.05)
        assert most <= baseline + 20 + 5, f"{most - baseline} descriptors over {baseline} with a cap of 20"
        # /health waits in the same queue; each wave of idle connections is closed after 1 s.
        assert health_within(srv, 15.0) < 15.0


@pytest.mark.parametrize("hard_too", [False, True], ids=["soft-limit-low", "hard-limit-low"])
def test_a_low_open_file_limit_does_not_fail_the_server(tmp_path: Path, hard_too: bool) -> None:
    """`ulimit -n 256`: batchd raises the soft limit to the hard one, and keeps its connection cap
    under whatever limit it gets, so 400 idle sockets never leave it without a descriptor."""
    limit = 256

    def low_limit() -> None:
        hard = limit if hard_too else resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))

    env = {"BATCHD_CONCURRENCY": "8", "BATCHD_HEADER_TIMEOUT": "1s"}
    srv = ServerProcess(tmp_path / "data", env, preexec=low_limit).start()
    try:
        worker = processes(srv)[-1]
        with held([connect(srv) for _ in range(400)]):
            time.sleep(0.5)
            fds = worker.num_fds()
            assert health_within(srv, 15.0) < 15.0
            with make_client(srv.base_url) as client:
                client.messages.batches.create(requests=[simple_request("a")])
        assert "Too many open files" not in srv.log()
        soft = worker.rlimit(psutil.RLIMIT_NOFILE)[0]
        assert fds < soft
        assert soft == limit if hard_too else soft > limit  # raised to the hard limit where it can be
    finally:
        srv.stop()


def test_kill_9_of_serve_frees_the_port_and_the_store(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory()
    tree = processes(srv)
    assert len(tree) == 2, tree  # granian's main process and the worker that runs the app
    srv.kill9()
    _, alive = psutil.wait_procs(tree, timeout=2.0)
    assert not alive, "the worker outlived a kill -9 of batchd serve"
    with socket.create_server(("127.0.0.1", srv.port)):
        pass  # the port is free
    lock = os.open(srv.data_dir / "batchd.db.lock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # and the SQLite file
    finally:
        os.close(lock)
    srv.start()


def test_a_second_server_on_the_same_port_fails_to_start(
    server_factory: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    srv = server_factory()
    second = subprocess.run(
        [sys.executable, "-m", "batchd", "serve", "--port", str(srv.port), "--data-dir", str(tmp_path / "2")],
        env=child_env({}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 1 and "cannot listen on 127.0.0.1" in second.stderr, second.stderr


def test_sigterm_with_a_stalled_upload_stops_cleanly(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(body_timeout="2s", log_level="info")
    with connect(srv) as sock:
        sock.sendall(
            request_head("POST", CREATE, "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
            + b"{"
        )
        time.sleep(0.2)
        assert srv.proc is not None
        started = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(15) == 0
        assert time.monotonic() - started < 6.0  # the upload's 2 s deadline, then the engine's stop
        assert read_response(sock, 1)[0].startswith(b"HTTP/1.1 408")
    assert "batchd stopped" in srv.log() and "Traceback" not in srv.log()


def test_shutdown_timeout_ends_a_shutdown_that_cannot_finish(
    server_factory: Callable[..., ServerProcess],
) -> None:
    srv = server_factory(body_timeout="60s", shutdown_timeout="2s")
    with connect(srv) as sock:
        sock.sendall(
            request_head("POST", CREATE, "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
            + b"{"
        )
        time.sleep(0.2)
        tree = processes(srv)
        assert srv.proc is not None
        started = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(15)
        assert time.monotonic() - started < 5.0
        assert not psutil.wait_procs(tree, timeout=2.0)[1]
    srv.start()  # its leases are recovered as after a crash


def test_signals_reach_the_worker_and_one_access_log(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(log_level="info")
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGUSR1)  # cli/debug.py: where each asyncio task waits
    deadline = time.monotonic() + 5
    while "WARNING batchd: task " not in srv.log():
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.05)
    assert health_within(srv, 2.0) < 2.0
    requests = [line for line in srv.log().splitlines() if "/health" in line]
    assert requests and all(" INFO batchd.access: request_id=" in line for line in requests)  # one log
    # granian would answer SIGHUP with a second worker beside the first; batchd stops instead
    assert srv.stop(signal.SIGHUP) == 0
    assert "batchd stopped" in srv.log() and "Traceback" not in srv.log()
