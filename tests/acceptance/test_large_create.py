"""Creates large enough to be decoded off the event loop: the same answers and errors as small ones."""

from __future__ import annotations

import anthropic
import httpx
import orjson
import pytest

from batchd.api.anthropic.batches import OFFLOAD_BYTES
from tests.acceptance.conftest import simple_request, wait_ended
from tests.acceptance.server import ServerProcess

PAD = "x" * 1000
N = OFFLOAD_BYTES // 1000 + 100  # ~1 KB a request: the body passes OFFLOAD_BYTES


def big(n: int = N) -> list[dict[str, object]]:
    return [simple_request(f"big-{i}", f"{i} {PAD}") for i in range(n)]


def test_a_large_create_is_decoded_and_runs(client: anthropic.Anthropic) -> None:
    requests = big()
    assert len(orjson.dumps({"requests": requests})) > OFFLOAD_BYTES
    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert batch.request_counts.processing == N
    ended = wait_ended(client, batch.id, N, timeout=120)
    assert ended.request_counts.succeeded == N
    ids = [r.custom_id for r in client.messages.batches.results(batch.id)]
    assert ids == [f"big-{i}" for i in range(N)]


def test_a_large_bad_create_is_400_in_the_envelope(client: anthropic.Anthropic) -> None:
    requests = [*big(), simple_request("big-7")]
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    assert f"requests.{N}.custom_id: Duplicate custom_id 'big-7'" in info.value.message
    body = info.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "invalid_request_error"


def test_large_malformed_json_is_400(server: ServerProcess) -> None:
    content = orjson.dumps({"requests": big()})[:-2]  # cut short
    r = httpx.post(
        server.base_url + "/v1/messages/batches",
        content=content,
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "not valid JSON" in r.json()["error"]["message"]
