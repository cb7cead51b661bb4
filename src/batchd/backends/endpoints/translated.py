"""Chat completions on a Messages backend (`anthropic`): translated there and back.

The line's body becomes Messages params (chat_in.py), validated as the engine validates any
Messages request, sent through the backend's own `create_message` (its `upstream_model`, auth,
betas and reasoning mode apply), and the Message comes back as a chat completion (chat_out.py).
An Anthropic-shaped error answer becomes OpenAI's envelope when the line is written
(engine/openai_lines.py). Text completions and embeddings have no Messages equivalent.
"""

from __future__ import annotations

from typing import Any

from batchd import exceptions, params
from batchd.backends.base import Backend
from batchd.backends.endpoints import chat_in, chat_out
from batchd.backends.endpoints.base import CHAT, InstantCall, answer, unsupported


class Preparer:
    """`params.prepare` with the engine's settings, its InvalidParams naming no OpenAI field."""

    def __init__(self, *, strict: bool = False, thinking_budget: int | None = None) -> None:
        self.strict = strict
        self.options: dict[str, Any] = (
            {} if thinking_budget is None else {"default_thinking_budget": thinking_budget}
        )

    def __call__(self, messages_params: dict[str, Any]) -> dict[str, Any]:
        try:
            return params.prepare(messages_params, strict=self.strict, **self.options)
        except exceptions.InvalidLine:
            raise
        except exceptions.InvalidParams as exc:
            raise exceptions.InvalidLine(
                f"the request, translated to Messages, is invalid there: {exc.message}"
            ) from None


class Translated:
    """The OpenAI endpoints of an `anthropic` backend."""

    instant: InstantCall | None = None  # every answer comes over HTTP

    def __init__(self, backend: Backend, prepare: Preparer) -> None:
        self.backend = backend
        self.prepare = prepare

    async def call(self, endpoint: str, body: dict[str, Any], *, attempt: int = 1) -> dict[str, Any]:
        if endpoint != CHAT:
            raise unsupported(endpoint, self.backend.kind.value)
        model = body["model"]
        prepared = self.prepare(chat_in.to_params(body, model=model))
        message = await self.backend.create_message(prepared, attempt=attempt)
        return answer(chat_out.to_chat_completion(message, model=model))


class Refused:
    """The endpoints of a backend that serves none of them."""

    instant: InstantCall | None = None

    def __init__(self, kind: str) -> None:
        self.kind = kind

    async def call(self, endpoint: str, body: dict[str, Any], *, attempt: int = 1) -> dict[str, Any]:
        raise unsupported(endpoint, self.kind)
