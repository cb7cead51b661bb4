"""The batches API end to end: a real server process, the official SDK as the client."""

from __future__ import annotations

import json
from datetime import timedelta

import anthropic
import httpx
import pytest

from tests.acceptance.conftest import MODEL, simple_request, total, wait_ended
from tests.acceptance.server import ServerProcess


def test_create_retrieve_results_roundtrip(client: anthropic.Anthropic) -> None:
    batch = client.messages.batches.create(
        requests=[simple_request("first"), simple_request("second", "Tell me about llamas")]
    )
    assert batch.id.startswith("msgbatch_")
    assert batch.type == "message_batch"
    assert batch.processing_status == "in_progress"
    assert total(batch) == 2
    assert batch.results_url is None
    assert batch.expires_at - batch.created_at == timedelta(hours=24)

    ended = wait_ended(client, batch.id, 2)
    assert ended.request_counts.succeeded == 2
    assert ended.ended_at is not None and ended.ended_at >= ended.created_at
    assert ended.results_url == f"/v1/messages/batches/{batch.id}/results"

    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert set(results) == {"first", "second"}
    for result in results.values():
        assert result.type == "succeeded"
        assert result.message.role == "assistant"
        assert result.message.model == MODEL
        assert result.message.content[0].type == "text"
        assert result.message.usage.output_tokens > 0


def test_beta_client_and_raw_wire(client: anthropic.Anthropic, server: ServerProcess) -> None:
    batch = client.beta.messages.batches.create(
        requests=[simple_request("b1")], betas=["message-batches-2024-09-24"]
    )
    ended = wait_ended(client, batch.id, 1)
    lines = list(client.beta.messages.batches.results(ended.id))
    assert [line.custom_id for line in lines] == ["b1"]

    raw = httpx.get(f"{server.base_url}{ended.results_url}", headers={"x-api-key": "k"})
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "application/x-jsonl"
    assert raw.headers["content-disposition"] == f"attachment; filename*=utf-8''{batch.id}_results.jsonl"
    assert raw.headers["request-id"].startswith("req_")
    assert raw.text.endswith("\n") and "\n\n" not in raw.text
    assert json.loads(raw.text.splitlines()[0])["custom_id"] == "b1"


def test_old_sdk_wire_x_api_key_and_beta_query(server: ServerProcess) -> None:
    """SDK 0.x/1.x: x-api-key, anthropic-version 2023-06-01, ?beta=true, the batches beta header."""
    headers = {
        "x-api-key": "old-key",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "message-batches-2024-09-24,string",
        "content-type": "application/json",
    }
    with httpx.Client(base_url=server.base_url, headers=headers) as http:
        created = http.post("/v1/messages/batches?beta=true", json={"requests": [simple_request("old")]})
        assert created.status_code == 200, created.text
        batch_id = created.json()["id"]
        got = http.get(f"/v1/messages/batches/{batch_id}?beta=true")
        assert got.status_code == 200 and got.json()["id"] == batch_id
        listed = http.get("/v1/messages/batches?beta=true&limit=5")
        assert batch_id in [b["id"] for b in listed.json()["data"]]
    with anthropic.Anthropic(
        base_url=server.base_url,
        api_key="old-key",
        _strict_response_validation=True,
        default_headers={"anthropic-version": "2023-06-01", "x-api-key": "old-key"},
    ) as old:
        batch = wait_ended(old, batch_id, 1)
        results = list(old.beta.messages.batches.results(batch.id, extra_query={"beta": "true"}))
        assert results[0].result.type == "succeeded"


async def test_async_client_full_cycle(aclient: anthropic.AsyncAnthropic) -> None:
    batch = await aclient.messages.batches.create(requests=[simple_request(f"a{i}") for i in range(5)])
    import asyncio

    for _ in range(600):
        batch = await aclient.messages.batches.retrieve(batch.id)
        assert total(batch) == 5
        if batch.processing_status == "ended":
            break
        await asyncio.sleep(0.05)
    assert batch.request_counts.succeeded == 5
    ids = sorted([r.custom_id async for r in await aclient.messages.batches.results(batch.id)])
    assert ids == [f"a{i}" for i in range(5)]
    page = await aclient.beta.messages.batches.list(limit=1)
    assert len(page.data) == 1
    deleted = await aclient.messages.batches.delete(batch.id)
    assert deleted.id == batch.id and deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        await aclient.messages.batches.retrieve(batch.id)


def test_list_pagination_both_directions(server_factory: object) -> None:
    srv = server_factory()  # type: ignore[operator]
    with anthropic.Anthropic(base_url=srv.base_url, api_key="k", _strict_response_validation=True) as client:
        created = [client.messages.batches.create(requests=[simple_request("x")]).id for _ in range(7)]
        newest_first = list(reversed(created))

        first = client.messages.batches.list(limit=3)
        assert [b.id for b in first.data] == newest_first[:3]
        assert first.has_more and first.first_id == newest_first[0] and first.last_id == newest_first[2]

        assert [b.id for b in client.messages.batches.list(limit=3)] == newest_first  # auto-paging forward
        assert [b.id for b in client.messages.batches.list()] == newest_first  # default limit 20

        older = client.messages.batches.list(limit=2, after_id=newest_first[1])
        assert [b.id for b in older.data] == newest_first[2:4]
        newer = client.messages.batches.list(limit=2, before_id=newest_first[4])
        assert [b.id for b in newer.data] == newest_first[2:4]
        assert newer.has_more
        # Backwards auto-paging from the oldest reaches the newest, in pages of 2.
        backwards = [b.id for b in client.messages.batches.list(limit=2, before_id=newest_first[-1])]
        assert sorted(backwards) == sorted(newest_first[:-1])

        last = client.messages.batches.list(limit=5, after_id=newest_first[4])
        assert [b.id for b in last.data] == newest_first[5:]
        assert not last.has_more
        for bad in (0, 1001):
            with pytest.raises(anthropic.BadRequestError):
                client.messages.batches.list(limit=bad)


def test_delete_rules(client: anthropic.Anthropic) -> None:
    batch = client.messages.batches.create(requests=[simple_request("slow", "wait @sim:delay=30")])
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.batches.delete(batch.id)
    assert "cancel" in info.value.message
    canceled = client.messages.batches.cancel(batch.id)
    assert canceled.processing_status in ("canceling", "ended")
    assert canceled.cancel_initiated_at is not None


@pytest.mark.parametrize("route", ["retrieve", "cancel", "delete", "results"])
def test_unknown_batch_is_404_in_envelope(
    client: anthropic.Anthropic, server: ServerProcess, route: str
) -> None:
    with httpx.Client(base_url=server.base_url) as http:
        path = "/v1/messages/batches/msgbatch_nope"
        response = {
            "retrieve": lambda: http.get(path),
            "cancel": lambda: http.post(path + "/cancel"),
            "delete": lambda: http.delete(path),
            "results": lambda: http.get(path + "/results"),
        }[route]()
    assert response.status_code == 404
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert body["request_id"] == response.headers["request-id"]


def test_unknown_route_and_method_use_the_envelope(server: ServerProcess) -> None:
    r = httpx.get(server.base_url + "/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    r = httpx.put(server.base_url + "/v1/messages/batches")
    assert r.status_code == 405 and r.json()["type"] == "error"


def test_openapi_describes_every_route(server: ServerProcess) -> None:
    doc = httpx.get(server.base_url + "/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/v1/messages/batches",
        "/v1/messages/batches/{message_batch_id}",
        "/v1/messages/batches/{message_batch_id}/cancel",
        "/v1/messages/batches/{message_batch_id}/results",
        "/v1/messages",
        "/v1/files",
        "/v1/files/{file_id}",
        "/v1/files/{file_id}/content",
        "/v1/messages/count_tokens",
        "/v1/models",
        "/v1/models/{model_id}",
        "/v1/batches",
        "/v1/batches/{batch_id}",
        "/v1/batches/{batch_id}/cancel",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
    }
