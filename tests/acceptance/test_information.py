"""What batchd tells whom, and how it fails: the metrics are the operator's, deep params are a 400
the SDK does not retry, a client that leaves mid-upload is one quiet log line, and /health says
when the store cannot be written (a real full disk: a tmpfs, for SQLite and for PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import asyncpg
import httpx
import httpx2
import pytest

from batchd import __version__
from tests.acceptance.conftest import make_client, simple_request, wait_ended
from tests.acceptance.server import ServerProcess, WorkerProcess, free_port
from tests.integration import pg

KEYS = "alpha-key:alpha,beta-key:beta"
SIM_MODEL = "batchd-simulated"  # for messages.create: the SDK warns of deprecated model names
MAX_DEPTH = 128  # levels of objects and arrays a request's params may nest, as README.md says
TOO_DEEP = f"Input is nested too deeply: params may nest at most {MAX_DEPTH} levels of objects and arrays"
SECRET_MODEL = "alpha-private-model-7"  # a model name only workspace alpha uses


def test_the_metrics_are_the_operators(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(api_keys=KEYS, metrics_keys="prom-key")
    with anthropic.Anthropic(base_url=srv.base_url, api_key="alpha-key", max_retries=0) as alpha:
        batch = alpha.messages.batches.create(requests=[simple_request("a", model=SECRET_MODEL)])
        wait_ended(alpha, batch.id, 1)
    metrics = srv.base_url + "/metrics"
    assert httpx.get(metrics).status_code == 401
    for key in ("beta-key", "alpha-key"):  # no workspace reads them, not even the model's own
        r = httpx.get(metrics, headers={"x-api-key": key})
        assert r.status_code == 403, r.text
        assert r.json()["error"]["type"] == "permission_error"
        assert SECRET_MODEL not in r.text
    scraped = httpx.get(metrics, headers={"authorization": "Bearer prom-key"})  # Prometheus's way
    assert scraped.status_code == 200
    assert f'batchd_requests_total{{model="{SECRET_MODEL}",result="succeeded"}} 1.0' in scraped.text
    # The operator's key is not a workspace's.
    assert (
        httpx.get(srv.base_url + "/v1/messages/batches", headers={"x-api-key": "prom-key"}).status_code == 401
    )


@pytest.mark.postgres
def test_a_workers_metrics_port_takes_the_same_keys(database: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "BATCHD_DATABASE_URL": database,
        "BATCHD_API_KEYS": KEYS,
        "BATCHD_METRICS_PORT": str(port),
    }
    refused = subprocess.run(
        [sys.executable, "-m", "batchd", "worker"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2, refused.stderr
    assert "metrics_port: with api_keys set, only a key in metrics_keys" in refused.stderr
    worker = WorkerProcess(tmp_path / "worker", {**env, "BATCHD_METRICS_KEYS": "prom-key"}).start()
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        none = httpx.get(url)
        assert none.status_code == 401, none.text
        assert none.json()["error"]["type"] == "authentication_error"
        assert httpx.get(url, headers={"authorization": "Bearer guess"}).status_code == 401
        workspace = httpx.get(url, headers={"x-api-key": "beta-key"})
        assert workspace.status_code == 403 and workspace.json()["error"]["type"] == "permission_error"
        for headers in ({"authorization": "Bearer prom-key"}, {"x-api-key": "prom-key"}):
            r = httpx.get(url, headers=headers)
            assert r.status_code == 200 and "batchd_claimed_requests_total" in r.text
    finally:
        assert worker.stop() == 0


# -- params nested too deeply ---------------------------------------------------------------


def deep_tool(levels: int) -> dict[str, Any]:
    """A tool whose input schema puts a request's params `levels` levels deep in all: params >
    tools > the tool > its schema > arrays of arrays of strings."""
    value: dict[str, Any] = {"type": "string"}
    for _ in range(levels - 6):
        value = {"type": "array", "items": value}
    return {"name": "t", "input_schema": {"type": "object", "properties": {"a": value}}}


@pytest.fixture
def deep_recursion() -> Iterator[None]:
    """The SDK prepares a body recursively: nested 2,000 levels deep, it needs a deeper stack."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)
    yield
    sys.setrecursionlimit(limit)


@pytest.fixture
def retrying_client(server: ServerProcess) -> Iterator[tuple[anthropic.Anthropic, list[str]]]:
    """The SDK as users run it, retrying what the server says to retry; and each attempt's path."""
    attempts: list[str] = []
    http = httpx2.Client(event_hooks={"request": [lambda request: attempts.append(request.url.path)]})
    with anthropic.Anthropic(base_url=server.base_url, api_key="k", http_client=http) as client:
        yield client, attempts


@pytest.mark.usefixtures("deep_recursion")
@pytest.mark.parametrize("levels", [1_000, 2_000])
def test_params_nested_too_deeply_are_a_400_the_sdk_sends_once(
    retrying_client: tuple[anthropic.Anthropic, list[str]], levels: int
) -> None:
    client, attempts = retrying_client
    deep = simple_request("deep", model=SIM_MODEL, tools=[deep_tool(levels)])
    with pytest.raises(anthropic.BadRequestError) as created:
        client.messages.batches.create(requests=[deep])  # type: ignore[list-item]
    with pytest.raises(anthropic.BadRequestError) as called:
        client.messages.create(**deep["params"])  # type: ignore[arg-type]
    messages = []
    for error in (created.value, called.value):
        assert error.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
        messages.append(error.body["error"]["message"])  # type: ignore[index]
        assert error.response.headers.get("x-should-retry") != "true"
    assert messages[0] == f"requests: {TOO_DEEP}"
    # Found by the JSON decoder's own limit (1,024 levels), or else by the params check.
    assert messages[1] == (TOO_DEEP if levels > 1024 else f"tools: {TOO_DEEP}")
    assert attempts == ["/v1/messages/batches", "/v1/messages"]  # each sent once, never retried


def test_the_depth_limit_is_exact_and_errors_only_the_deep_request(client: anthropic.Anthropic) -> None:
    at_limit = simple_request("at-limit", model=SIM_MODEL, tools=[deep_tool(MAX_DEPTH)])
    beyond = simple_request("beyond", model=SIM_MODEL, tools=[deep_tool(MAX_DEPTH + 1)])
    batch = client.messages.batches.create(requests=[at_limit, beyond, simple_request("plain")])  # type: ignore[list-item]
    ended = wait_ended(client, batch.id, 3)
    assert (ended.request_counts.succeeded, ended.request_counts.errored) == (2, 1)
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert results["at-limit"].type == "succeeded" and results["plain"].type == "succeeded"
    assert results["beyond"].type == "errored"
    assert results["beyond"].error.error.message == f"tools: {TOO_DEEP}"  # type: ignore[union-attr]
    assert client.messages.create(**at_limit["params"]).type == "message"  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError, match="at most 128 levels"):
        client.messages.create(**beyond["params"])  # type: ignore[arg-type]


# -- a client that leaves mid-upload --------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/messages/batches", "/v1/messages"])
def test_a_client_leaving_mid_upload_is_one_quiet_log_line(
    server_factory: Callable[..., ServerProcess], path: str
) -> None:
    srv = server_factory(log_level="info")
    half = b'{"requests": [' + b'{"custom_id": "a", "params": {"model": "m"}},' * 200
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        sock.sendall(head.encode() + f"Content-Length: {len(half) * 2}\r\n\r\n".encode() + half)
        time.sleep(0.2)  # the server is waiting for the rest of the body when the client goes
    deadline = time.monotonic() + 30
    while "status=499" not in srv.log():
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.05)
    time.sleep(0.5)  # anything else the server would log about it
    log = srv.log()
    lines = [line for line in log.splitlines() if f"path={path}" in line]
    assert len(lines) == 1, log
    assert re.search(r"status=499 duration_ms=\S+ note=\"client closed request\"$", lines[0]), lines[0]
    assert " INFO " in lines[0]
    for noise in ("Traceback", "ERROR", "Exception in ASGI application", "status=500"):
        assert noise not in log, log
    with make_client(srv.base_url) as client:
        assert client.messages.batches.list().data == []  # nothing stored
    scraped = httpx.get(srv.base_url + "/metrics").text
    assert f'batchd_http_requests_total{{method="POST",route="{path}",status="499"}} 1.0' in scraped
    assert 'status="5' not in scraped  # no server error counted


# -- /health on a full disk -----------------------------------------------------------------


@contextlib.contextmanager
def small_disk(size: str, **options: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted on a fresh directory under the system's temp dir, unmounted
    after; skips the test where mounting is not allowed (it needs root and CAP_SYS_ADMIN)."""
    mount = Path(tempfile.mkdtemp(prefix="batchd-disk-"))
    opts = ",".join([f"size={size}", *(f"{k}={v}" for k, v in options.items())])
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        mount.rmdir()
        pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        mount.rmdir()


def fill(disk: Path) -> Path:
    """Writes a file on `disk` until the disk is full; returns it (remove it to free the space)."""
    filler = disk / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def wait_health(base_url: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
    """/health's answer once its status is `status` (the write probe's verdict lasts two seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(base_url + "/health", timeout=5)
        body: dict[str, Any] = r.json()
        if body["status"] == status:
            assert r.status_code == (200 if status == "ok" else 503), r.text
            return body
        assert time.monotonic() < deadline, f"/health stayed {body}"
        time.sleep(0.1)


def degraded_then_recovered(srv: ServerProcess, disk: Path, big: list[dict[str, object]]) -> None:
    """The full disk shows at /health, creates are refused cleanly; freeing space recovers both."""
    with make_client(srv.base_url) as client:
        assert wait_health(srv.base_url, "ok")["limits"]
        first = client.messages.batches.create(requests=[simple_request("before")])
        wait_ended(client, first.id, 1)
        filler = fill(disk)
        assert wait_health(srv.base_url, "degraded") == {
            "status": "degraded",
            "reason": "the store cannot be written: disk full",
            "version": __version__,
        }
        with pytest.raises(anthropic.APIStatusError) as refused:
            client.messages.batches.create(requests=big)  # type: ignore[arg-type]
        assert refused.value.status_code == 503
        assert refused.value.body["type"] == "error"  # type: ignore[index]
        assert client.messages.batches.retrieve(first.id).processing_status == "ended"  # reads go on
        filler.unlink()
        wait_health(srv.base_url, "ok")
        after = client.messages.batches.create(requests=big)  # type: ignore[arg-type]
        assert wait_ended(client, after.id, len(big)).request_counts.succeeded == len(big)


def big_batch() -> list[dict[str, object]]:
    """About 800 KB of requests: more than any room a full disk's files still have."""
    return [simple_request(f"r{i}", "x" * 4000) for i in range(200)]


def test_health_reports_a_full_disk_under_sqlite(tmp_path: Path) -> None:
    with small_disk("4m") as disk:
        srv = ServerProcess(disk / "data")
        srv.log_path = tmp_path / "server.log"  # the log must not fill the disk under test
        srv.start()
        try:
            degraded_then_recovered(srv, disk, big_batch())
        finally:
            srv.stop()


def admin(*statements: str) -> list[Any]:
    """Runs each statement on the PostgreSQL server as its administrator; the first column of each
    one's first row."""

    async def run() -> list[Any]:
        conn = await asyncpg.connect(pg.ADMIN_URL, timeout=3)
        try:
            return [await conn.fetchval(statement) for statement in statements]
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.mark.postgres
def test_health_reports_a_full_disk_under_postgresql(tmp_path: Path) -> None:
    """The database's tables live in a tablespace on the tmpfs (its catalog and WAL do not)."""
    if not asyncio.run(pg.available()):
        pytest.skip(f"no PostgreSQL server at {pg.ADMIN_URL}")
    (data_dir,) = admin("SHOW data_directory")
    if not os.path.isdir(data_dir):
        pytest.skip("the PostgreSQL server is not on this machine: it cannot see a tmpfs mounted here")
    owner = os.stat(data_dir)
    name = f"batchd_t{os.getpid()}_full"
    with small_disk("4m", uid=str(owner.st_uid), gid=str(owner.st_gid), mode="0700") as disk:
        admin(f"CREATE TABLESPACE {name} LOCATION '{disk}'")
        try:
            admin(f"CREATE DATABASE {name}", f"ALTER DATABASE {name} SET default_tablespace = {name}")
            srv = ServerProcess(tmp_path / "data", {"BATCHD_DATABASE_URL": pg.url_for(name)}).start()
            try:
                degraded_then_recovered(srv, disk, big_batch())
            finally:
                srv.stop()
        finally:
            admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"DROP TABLESPACE IF EXISTS {name}")
