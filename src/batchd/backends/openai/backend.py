"""The `openai` backend: any `/v1/chat/completions` endpoint, translated both ways.

The translation lives in `openai_request` (Messages -> chat completion) and `openai_response`
(chat completion -> Message); what cannot be translated fails the request with a precise
`invalid_request_error` before anything is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from batchd.backends import base
from batchd.backends.http import Upstream, auth_header
from batchd.backends.openai import request as openai_request
from batchd.backends.openai import response as openai_response
from batchd.config.routes import AuthMode, BackendKind, ReasoningMode


class OpenAIBackend:
    kind = BackendKind.OPENAI
    instant: base.InstantAnswer | None = None  # every answer comes over HTTP

    def __init__(
        self,
        base_url: str,
        *,
        upstream_model: str = "",
        api_key: str | None = None,
        auth: AuthMode = AuthMode.BEARER,
        reasoning: ReasoningMode = ReasoningMode.CHAT_TEMPLATE_KWARGS,
        headers: dict[str, str] | None = None,
        concurrency: int = 64,
        timeout: float = 600.0,
    ) -> None:
        fixed = {**(headers or {}), **auth_header(api_key, auth)}
        self.upstream_model = upstream_model
        self.reasoning = reasoning
        self.upstream = Upstream(
            "openai upstream",
            base_url,
            concurrency=concurrency,
            timeout=timeout,
            headers=fixed,
        )

    async def create_message(
        self, params: dict[str, Any], *, attempt: int = 1, betas: Sequence[str] = ()
    ) -> dict[str, Any]:
        requested = params["model"]
        body = openai_request.to_chat(
            params, model=self.upstream_model or requested, reasoning=self.reasoning
        )
        data, _ = await self.upstream.post_json("/chat/completions", body)
        return openai_response.to_message(data, model=requested, params=params, upstream=self.upstream.name)

    async def aclose(self) -> None:
        await self.upstream.aclose()
