from __future__ import annotations

import dataclasses

import orjson
import pytest

from batchd import exceptions, models, params
from batchd.api.anthropic import schemas


def body(requests: object) -> bytes:
    return orjson.dumps({"requests": requests})


def test_decode_keeps_params_bytes_verbatim() -> None:
    raw = b'{"requests":[{"custom_id":"a","params":{"model":"m",  "x":[1,2]}}], "extra": 1}'
    parsed = schemas.decode_create(raw, 10)
    assert [r.custom_id for r in parsed.requests] == ["a"]
    assert bytes(memoryview(parsed.requests[0].params)) == b'{"model":"m",  "x":[1,2]}'


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"", "requests: Field required"),
        (b" \r\n\t ", "requests: Field required"),
        (bytearray(b"\n\n"), "requests: Field required"),
        (b"{}", "requests: Field required"),
        (b"nope", "not valid JSON"),
        (body([]), "at least 1 item"),
        (body([{"custom_id": "a"}]), "requests.0.params: Field required"),
        (body([{"params": {}}]), "requests.0.custom_id: Field required"),
        (body([{"custom_id": "a b", "params": {}}]), "requests.0.custom_id: String should match"),
        (
            body([{"custom_id": "a", "params": {}}, {"custom_id": "a", "params": {}}]),
            "requests.1.custom_id: Duplicate",
        ),
        (body([{"custom_id": "a", "params": []}]), "requests.0.params: Input should be a valid dictionary"),
        (
            body(
                [{"custom_id": "a", "params": {}}] * 1
                + [{"custom_id": f"b{i}", "params": {}} for i in range(3)]
            ),
            "at most 3 items",
        ),
    ],
)
def test_envelope_errors(payload: bytes, needle: str) -> None:
    with pytest.raises(exceptions.InvalidRequest) as info:
        schemas.decode_create(payload, 3)
    assert needle in info.value.message


@pytest.mark.parametrize("where", ["params", "extra"])
def test_a_body_too_deep_to_decode_is_a_400_naming_the_limit(where: str) -> None:
    deep = b"[" * 5000 + b"]" * 5000
    item = (
        b'{"custom_id":"a","params":{"x":' + deep + b"}}"
        if where == "params"
        else b'{"custom_id":"a","params":{}}'
    )
    extra = b',"x":' + deep if where == "extra" else b""
    with pytest.raises(exceptions.InvalidRequest) as info:
        schemas.decode_create(b'{"requests":[' + item + b"]" + extra + b"}", 3)
    assert info.value.message == f"requests: {params.TOO_DEEP}"


def test_batch_rendering_matches_the_wire() -> None:
    b = models.Batch(
        id="msgbatch_x",
        workspace="w",
        processing_status=models.ProcessingStatus.ENDED,
        request_counts=models.RequestCounts(succeeded=2, errored=1),
        created_at=1724179044.100435,
        expires_at=1724265444.100435,
        ended_at=1724179100.0,
    )
    wire = schemas.batch(b, "")
    assert wire["created_at"] == "2024-08-20T18:37:24.100435Z"
    assert wire["results_url"] == "/v1/messages/batches/msgbatch_x/results"
    assert wire["request_counts"] == {
        "processing": 0,
        "succeeded": 2,
        "errored": 1,
        "canceled": 0,
        "expired": 0,
    }
    assert wire["cancel_initiated_at"] is None and wire["type"] == "message_batch"
    assert schemas.batch(b, "https://batchd.example")["results_url"].startswith("https://batchd.example/v1/")
    running = dataclasses.replace(b, processing_status=models.ProcessingStatus.IN_PROGRESS)
    assert schemas.batch(running, "")["results_url"] is None


def test_page_always_fills_cursors() -> None:
    assert schemas.page([], False, "") == {"data": [], "has_more": False, "first_id": None, "last_id": None}
