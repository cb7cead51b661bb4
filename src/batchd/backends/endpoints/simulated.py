"""The simulator's OpenAI endpoints: answers in OpenAI's shape, as deterministic as its Messages.

Chat completions go through the same translation as an `anthropic` backend (chat_in.py, then
chat_out.py) into the simulator's Messages engine, so its directives (`@sim:error=…`,
`@sim:fail=429x2`, `@sim:delay=…`) work in a line's last user message too. A text completion is
one user message per prompt (`max_tokens` defaults to 16, as OpenAI's). Embeddings are
vectors.py's. A simulated HTTP error becomes the line's error response, in OpenAI's envelope.
"""

from __future__ import annotations

import asyncio
from typing import Any

from batchd import exceptions
from batchd.backends.base import Backend
from batchd.backends.endpoints import chat_in, chat_out, vectors
from batchd.backends.endpoints.base import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    InstantCall,
    answer,
    envelope,
)
from batchd.backends.endpoints.translated import Preparer
from batchd.backends.simulator import SimulatedBackend

COMPLETION_MAX_TOKENS = 16  # OpenAI's default for /v1/completions
_COMPLETION_IGNORED = frozenset({"model", "prompt", "stream", "stream_options", "user", "seed"})
_COMPLETION_KEPT = frozenset({"max_tokens", "temperature", "top_p", "stop", "n", "best_of"})


def serves(backend: Backend) -> bool:
    return isinstance(backend, SimulatedBackend)


class SimulatedEndpoints:
    def __init__(self, backend: Backend, prepare: Preparer) -> None:
        assert isinstance(backend, SimulatedBackend)
        self.sim = backend
        self.prepare = prepare

    @property
    def instant(self) -> InstantCall | None:
        return self.answer if self.sim.instant is not None else None

    async def call(self, endpoint: str, body: dict[str, Any], *, attempt: int = 1) -> dict[str, Any]:
        response, pause = self.answer(endpoint, body, attempt)
        if pause > 0:
            await asyncio.sleep(pause)
        return response

    def answer(self, endpoint: str, body: dict[str, Any], attempt: int = 1) -> tuple[dict[str, Any], float]:
        try:
            if endpoint == CHAT:
                return self._chat(body, attempt)
            if endpoint == COMPLETIONS:
                return self._completion(body, attempt)
            if endpoint == EMBEDDINGS:
                return answer(vectors.embed(body)), self.sim.latency
        except (exceptions.BackendTimeout, exceptions.UpstreamStatus):
            raise
        except exceptions.BackendError as exc:  # a simulated HTTP error, as an upstream answers it
            raise exceptions.UpstreamStatus(
                exc.message,
                status=exc.status,
                error_type=exc.error_type,
                retryable=exc.retryable,
                retry_after=exc.retry_after,
                body=envelope(exc.message, exc.error_type),
            ) from None
        raise exceptions.InvalidLine(f"{endpoint} is not an endpoint batchd runs", param="url")

    def _chat(self, body: dict[str, Any], attempt: int) -> tuple[dict[str, Any], float]:
        model = body["model"]
        params = self.prepare(chat_in.to_params(body, model=model))
        message, pause = self.sim.answer(params, attempt=attempt)
        # the simulator's tokens are words, of thinking blocks as of text
        thinking = sum(len(b["thinking"].split()) for b in message["content"] if b["type"] == "thinking")
        return answer(chat_out.to_chat_completion(message, model=model, reasoning_tokens=thinking)), pause

    def _completion(self, body: dict[str, Any], attempt: int) -> tuple[dict[str, Any], float]:
        for key, value in body.items():
            if key in _COMPLETION_IGNORED or key in _COMPLETION_KEPT or value in (None, False, 0):
                continue
            raise chat_in.untranslatable(key, f"`{key}`")
        for key in ("n", "best_of"):
            if body.get(key) not in (None, 1):
                raise chat_in.untranslatable(key, f"{key} > 1")
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise chat_in.bad("prompt", "must be a string or a list of strings (token ids are not simulated)")
        chat = {k: v for k, v in body.items() if k in ("temperature", "top_p", "stop")}
        chat["max_tokens"] = body.get("max_tokens") or COMPLETION_MAX_TOKENS
        messages, pause = [], 0.0
        for text in prompts:
            params = chat_in.to_params(
                {**chat, "messages": [{"role": "user", "content": text or " "}]}, model=body["model"]
            )
            message, wait = self.sim.answer(self.prepare(params), attempt=attempt)
            messages.append(message)
            pause = max(pause, wait)
        return answer(chat_out.to_text_completion(messages, model=body["model"])), pause
