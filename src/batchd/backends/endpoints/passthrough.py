"""The OpenAI endpoints of an OpenAI-compatible upstream (`openai`, `llamacpp`): the body untouched.

Only `model` changes (to the route's `upstream_model`, when it names one) and `stream` is forced
off (`stream_options` goes with it); the answer's body is the upstream's, as it is, its
`x-request-id` the line's `request_id`. An HTTP error answer keeps its status and JSON body
(exceptions.UpstreamStatus) for the error line. llama.cpp serves embeddings from a second server
started in embeddings mode (backends/llamacpp.py, `gguf_embeddings`); without one its
`/v1/embeddings` fails the line.
"""

from __future__ import annotations

from typing import Any

from batchd.backends.base import Backend
from batchd.backends.endpoints.base import EMBEDDINGS, ENDPOINTS, InstantCall, answer
from batchd.backends.http import Upstream
from batchd.backends.openai import OpenAIBackend
from batchd.config.routes import BackendKind
from batchd.exceptions import InvalidLine


def serves(backend: Backend) -> bool:
    return isinstance(backend, OpenAIBackend)


def body_for(body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    """What is sent: `body` with `model` mapped and streaming off."""
    sent = dict(body)
    if upstream_model:
        sent["model"] = upstream_model
    if "stream" in sent:
        sent["stream"] = False
    sent.pop("stream_options", None)
    return sent


class Passthrough:
    instant: InstantCall | None = None  # every answer comes over HTTP

    def __init__(self, backend: Backend) -> None:
        assert isinstance(backend, OpenAIBackend)
        self.backend = backend
        self.upstream: Upstream = backend.upstream
        #: llama.cpp's embeddings server (None: this upstream's own /embeddings, or none for llama.cpp)
        self.embeddings: Upstream | None = getattr(backend, "embeddings", None)

    async def call(self, endpoint: str, body: dict[str, Any], *, attempt: int = 1) -> dict[str, Any]:
        if endpoint not in ENDPOINTS:
            raise InvalidLine(f"{endpoint} is not an endpoint batchd runs", param="url")
        upstream = self.upstream
        if endpoint == EMBEDDINGS and self.backend.kind is BackendKind.LLAMACPP:
            if self.embeddings is None:
                raise InvalidLine(
                    "/v1/embeddings on the llamacpp backend needs an embeddings model: set gguf_embeddings",
                    param="url",
                )
            upstream = self.embeddings
        path = endpoint.removeprefix("/v1")  # the upstream's base URL ends in /v1
        data, headers = await upstream.post_json(path, body_for(body, self.backend.upstream_model))
        return answer(data, headers.get("x-request-id"))
