"""Which wire a request speaks (api/wires.py): one /v1/files for two APIs."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from batchd.api import wires


def request(path: str, **headers: str) -> Request:
    raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": path, "headers": raw, "query_string": b""})


@pytest.mark.parametrize(
    ("path", "headers", "openai"),
    [
        ("/v1/batches", {}, True),
        ("/v1/batches/batch_1/cancel", {"anthropic_version": "2023-06-01"}, True),
        ("/v1/files", {"authorization": "Bearer k"}, True),
        ("/v1/files/file-abc/content", {}, True),
        ("/v1/files", {"anthropic_version": "2023-06-01"}, False),
        ("/v1/files", {"anthropic_beta": "files-api-2025-04-14"}, False),
        ("/v1/files", {"x_api_key": "k"}, False),
        ("/v1/files/file_01abc", {}, False),
        ("/v1/messages/batches", {}, False),
        ("/v1/filesystem", {}, False),
        ("/v1/chat/completions", {"x_api_key": "k"}, True),
        ("/v1/completions", {}, True),
        ("/v1/embeddings", {}, True),
        ("/v1/messages", {}, False),
    ],
)
def test_the_wire_of_a_request(path: str, headers: dict[str, str], openai: bool) -> None:
    assert wires.is_openai(request(path, **headers)) is openai
