from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.acceptance.server import ServerProcess

MODEL = "claude-sonnet-4-5-20250929"


def simple_request(custom_id: str, text: str = "Hello there", **params: object) -> dict[str, object]:
    return {
        "custom_id": custom_id,
        "params": {
            "model": MODEL,
            "max_tokens": 256,
            "messages": [{"role": "user", "content": text}],
            **params,
        },
    }


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One shared server for tests that do not need special settings."""
    proc = ServerProcess(tmp_path_factory.mktemp("batchd-shared")).start()
    yield proc
    proc.stop()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def make(**env: str) -> ServerProcess:
        proc = ServerProcess(
            tmp_path / f"data{len(started)}", {f"BATCHD_{k.upper()}": v for k, v in env.items()}
        )
        started.append(proc.start())
        return proc

    yield make
    for proc in started:
        proc.stop()


def make_client(base_url: str, **kwargs: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=base_url, api_key="test-key", _strict_response_validation=True, max_retries=0, **kwargs
    )


@pytest.fixture
def client(server: ServerProcess) -> Iterator[anthropic.Anthropic]:
    with make_client(server.base_url) as c:
        yield c


@pytest.fixture
async def aclient(server: ServerProcess) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=server.base_url, api_key="test-key", _strict_response_validation=True, max_retries=0
    ) as c:
        yield c


def total(batch: Any) -> int:
    c = batch.request_counts
    return int(c.processing + c.succeeded + c.errored + c.canceled + c.expired)


def wait_ended(client: anthropic.Anthropic, batch_id: str, expected: int, timeout: float = 30.0) -> Any:
    """Polls until the batch ends, checking at every observation that the counts add up."""
    deadline = time.monotonic() + timeout
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        assert total(batch) == expected, batch
        if batch.processing_status == "ended":
            return batch
        assert time.monotonic() < deadline, f"batch {batch_id} did not end: {batch}"
        time.sleep(0.05)


def assert_recovered(
    base_url: str,
    batch_id: str,
    n: int,
    snapshots: list[dict[int, bytes]],
    final: Callable[[], dict[int, bytes]],
) -> None:
    """After crashes: the batch ends, every request has exactly one result, none changed once written."""
    assert snapshots[0], "the first kill should land after some results were written"
    with make_client(base_url) as client:
        ended = wait_ended(client, batch_id, n, timeout=180)
        assert ended.request_counts.succeeded == n
        ids = [line.custom_id for line in client.messages.batches.results(batch_id)]
    assert len(ids) == n and set(ids) == {f"req-{i}" for i in range(n)}
    written = final()
    assert len(written) == n
    for snap in snapshots:
        for key, line in snap.items():
            assert written[key] == line, "a written result changed after a crash"
