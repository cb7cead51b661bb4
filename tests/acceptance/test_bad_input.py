"""A malformed batch is refused whole, in Anthropic's envelope; nothing accepted is lost."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.acceptance.conftest import simple_request, wait_ended
from tests.acceptance.server import ServerProcess


@pytest.mark.parametrize(
    ("requests", "needle"),
    [
        ([], "at least 1 item"),
        ([{"params": simple_request("x")["params"]}], "requests.0.custom_id: Field required"),
        ([{"custom_id": "x"}], "requests.0.params: Field required"),
        ([simple_request("ok"), {"custom_id": "bad id!", "params": {}}], "requests.1.custom_id"),
        ([{"custom_id": "x" * 65, "params": {}}], "requests.0.custom_id"),
        ([{"custom_id": "", "params": {}}], "requests.0.custom_id"),
        ([simple_request("dup"), simple_request("dup")], "Duplicate custom_id 'dup'"),
        ([{"custom_id": "p", "params": "not an object"}], "requests.0.params"),
        ([{"custom_id": 5, "params": {}}], "requests.0.custom_id"),
    ],
)
def test_bad_envelope_is_400(client: anthropic.Anthropic, requests: list[object], needle: str) -> None:
    before = [b.id for b in client.messages.batches.list(limit=1000)]
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert info.value.status_code == 400
    assert needle in info.value.message
    body = info.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "invalid_request_error"
    assert info.value.request_id and info.value.request_id.startswith("req_")
    assert [b.id for b in client.messages.batches.list(limit=1000)] == before  # nothing half-created


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[]", b'{"requests": {}}', b'{"requests": [1]}', b"\xff\xfe"],
)
def test_malformed_json_is_400(server: ServerProcess, body: bytes) -> None:
    r = httpx.post(
        server.base_url + "/v1/messages/batches", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_limits_are_configurable(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(max_requests="3", max_batch_bytes="4KB")
    with anthropic.Anthropic(base_url=srv.base_url, api_key="k", max_retries=0) as client:
        with pytest.raises(anthropic.BadRequestError) as info:
            client.messages.batches.create(requests=[simple_request(f"r{i}") for i in range(4)])
        assert "at most 3 items" in info.value.message
        big = "x" * 5000
        with pytest.raises(anthropic.APIStatusError) as too_large:
            client.messages.batches.create(requests=[simple_request("big", big)])
        assert too_large.value.status_code == 413
        assert too_large.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]
        ok = client.messages.batches.create(requests=[simple_request(f"r{i}") for i in range(3)])
        assert wait_ended(client, ok.id, 3).request_counts.succeeded == 3


def test_oversized_stream_is_cut_off_without_content_length(
    server_factory: Callable[..., ServerProcess],
) -> None:
    srv = server_factory(max_batch_bytes="64KB")

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"requests": ['
        for _ in range(1000):
            yield b'{"custom_id": "a", "params": {"model": "m", "pad": "' + b"y" * 1000 + b'"}},'
        yield b"]}"

    r = httpx.post(
        srv.base_url + "/v1/messages/batches", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "request_too_large"
    assert httpx.get(srv.base_url + "/health").status_code == 200


def test_api_keys_and_workspace_isolation(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(api_keys="alpha-key:alpha,beta-key:beta,alpha-two:alpha")
    with anthropic.Anthropic(base_url=srv.base_url, api_key="wrong", max_retries=0) as bad:
        with pytest.raises(anthropic.AuthenticationError) as info:
            bad.messages.batches.list()
        assert info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    r = httpx.get(srv.base_url + "/v1/messages/batches")
    assert r.status_code == 401 and r.json()["type"] == "error"
    alpha = anthropic.Anthropic(base_url=srv.base_url, api_key="alpha-key", _strict_response_validation=True)
    alpha2 = anthropic.Anthropic(base_url=srv.base_url, api_key="alpha-two", _strict_response_validation=True)
    beta = anthropic.Anthropic(base_url=srv.base_url, api_key="beta-key", max_retries=0)
    batch = alpha.messages.batches.create(requests=[simple_request("a")])
    assert alpha2.messages.batches.retrieve(batch.id).id == batch.id  # same workspace, other key
    with pytest.raises(anthropic.NotFoundError):
        beta.messages.batches.retrieve(batch.id)
    with pytest.raises(anthropic.NotFoundError):
        beta.messages.batches.cancel(batch.id)
    assert beta.messages.batches.list().data == []
    # The old wire (x-api-key) authenticates too.
    r = httpx.get(f"{srv.base_url}/v1/messages/batches/{batch.id}", headers={"x-api-key": "alpha-key"})
    assert r.status_code == 200
    for c in (alpha, alpha2, beta):
        c.close()


def serve_until_refused(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`batchd serve` with these options, expected to stop before serving."""
    return subprocess.run(
        [sys.executable, "-m", "batchd", "serve", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=30,
    )


# Names that only look like loopback (a name's address is whatever its DNS says) and a real one.
@pytest.mark.parametrize(
    "host", ["0.0.0.0", "127.attacker.invalid", "127.0.0.1.nip.io", "localhost.attacker.invalid"]
)
def test_non_loopback_bind_without_keys_is_refused(tmp_path: Path, host: str) -> None:
    proc = serve_until_refused(tmp_path, "--host", host)
    assert proc.returncode == 2, proc.stderr
    assert f"host: binding {host} needs api_keys" in proc.stderr


def test_config_file_sets_limits(server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    toml = tmp_path / "batchd.toml"
    toml.write_text('[batchd]\nmax_requests = 2\nbatch_lifetime = "90s"\n')
    srv = server_factory(config=str(toml))
    with anthropic.Anthropic(base_url=srv.base_url, api_key="k", max_retries=0) as client:
        with pytest.raises(anthropic.BadRequestError, match="at most 2 items"):
            client.messages.batches.create(requests=[simple_request(f"r{i}") for i in range(3)])
        batch = client.messages.batches.create(requests=[simple_request("a"), simple_request("b")])
        assert (batch.expires_at - batch.created_at).total_seconds() == pytest.approx(90, abs=0.01)


def test_bad_config_file_is_a_clear_start_error(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("batch_lifetime = 'whenever'\n")
    proc = serve_until_refused(tmp_path, "--config", str(toml))
    assert proc.returncode == 2
    assert "batch_lifetime" in proc.stderr and "not a duration" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_names_in_the_config_file_stop_the_start(tmp_path: Path) -> None:
    toml = tmp_path / "typo.toml"
    # [[route]] for [[routes]]: were it ignored, every model would silently go to the simulator.
    toml.write_text('[[route]]\nmodel = "claude-*"\nbackend = "openai"\nbase_url = "http://127.0.0.1:9"\n')
    proc = serve_until_refused(tmp_path, "--config", str(toml))
    assert proc.returncode == 2
    assert proc.stderr == f"batchd: config file {toml}: unknown table [[route]] (did you mean [[routes]]?)\n"
    assert not (tmp_path / "batchd.db").exists()  # refused before anything was opened
