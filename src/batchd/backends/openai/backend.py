"""The `openai` backend: any `/v1/chat/completions` endpoint, translated both ways.

The translation lives in `openai_request` (Messages -> chat completion) and `openai_response`
(chat completion -> Message); what cannot be translated fails the request with a precise
`invalid_request_error` before anything is sent. Token counts are the `usage.prompt_tokens` of
a one-token completion (`count_tokens`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from batchd import exceptions
from batchd.backends import base
from batchd.backends.http import Upstream, auth_header
from batchd.backends.openai import request as openai_request
from batchd.backends.openai import response as openai_response
from batchd.backends.openai import stream as openai_stream
from batchd.backends.streaming import Event
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
        data, _ = await self.upstream.post_json("/chat/completions", self.chat_body(params))
        return openai_response.to_message(
            data, model=params["model"], params=params, upstream=self.upstream.name
        )

    def stream_message(self, params: dict[str, Any], *, betas: Sequence[str] = ()) -> AsyncIterator[Event]:
        """The answer's events as the upstream streams its tokens (stream.py)."""
        return openai_stream.stream_message(
            self.upstream, self.chat_body(params), model=params["model"], params=params
        )

    async def count_tokens(self, params: dict[str, Any], *, betas: Sequence[str] = ()) -> int:
        """The prompt tokens of a one-token completion of `params`: chat completions have no
        count endpoint, so this is the upstream's own count of the templated prompt (tools and
        response format included) at the cost of generating one token."""
        body = self.chat_body({**params, "max_tokens": 1})
        data, _ = await self.upstream.post_json("/chat/completions", body)
        prompt = (data.get("usage") or {}).get("prompt_tokens")
        if type(prompt) is not int or prompt < 0:
            raise exceptions.BackendError(
                f"{self.upstream.name} answered without usage.prompt_tokens: it cannot count tokens",
                status=502,
            )
        return prompt

    async def model_ids(self) -> list[str]:
        """The upstream's models (`GET /models`)."""
        data, _ = await self.upstream.get_json("/models")
        return [str(m["id"]) for m in data.get("data") or () if isinstance(m, dict) and m.get("id")]

    def chat_body(self, params: dict[str, Any]) -> dict[str, Any]:
        """The chat-completions body for `params`."""
        model = self.upstream_model or params["model"]
        return openai_request.to_chat(params, model=model, reasoning=self.reasoning)

    async def aclose(self) -> None:
        await self.upstream.aclose()
