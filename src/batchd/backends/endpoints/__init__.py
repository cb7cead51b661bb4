"""The OpenAI endpoints on every backend: one call of `/v1/chat/completions`, `/v1/completions` or
`/v1/embeddings` (an OpenAI batch's line), answered as OpenAI answers it.

`for_backend` gives a backend's `Endpoints`:

- `openai` and `llamacpp`: the body goes to the upstream untouched but for `model` (a route's
  `upstream_model`) and `stream` (forced off) — passthrough.py;
- `anthropic`: chat completions are translated to Messages and the Message back (chat_in.py,
  chat_out.py); completions and embeddings fail the line — translated.py;
- the simulator: chat and text completions through the same translation into its Messages engine,
  deterministic embeddings (vectors.py) — simulated.py.

An answer is the `response` object of the line: `{"status_code", "request_id", "body"}`. Failures
raise as `Backend.create_message` does; `exceptions.InvalidLine` names the field a backend
cannot run.
"""

from __future__ import annotations

from batchd.backends.base import Backend
from batchd.backends.endpoints import passthrough, simulated, translated
from batchd.backends.endpoints.base import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    ENDPOINTS,
    Endpoints,
    InstantCall,
    answer,
    envelope,
)
from batchd.config.routes import BackendKind

__all__ = [
    "CHAT",
    "COMPLETIONS",
    "EMBEDDINGS",
    "ENDPOINTS",
    "Endpoints",
    "InstantCall",
    "answer",
    "envelope",
    "for_backend",
]


def for_backend(backend: Backend, *, strict: bool = False, thinking_budget: int | None = None) -> Endpoints:
    """`backend`'s OpenAI endpoints (`strict`, `thinking_budget`: as the engine prepares Messages)."""
    prepare = translated.Preparer(strict=strict, thinking_budget=thinking_budget)
    kind = backend.kind
    if kind is BackendKind.SIMULATED and simulated.serves(backend):
        return simulated.SimulatedEndpoints(backend, prepare)
    if kind in (BackendKind.OPENAI, BackendKind.LLAMACPP) and passthrough.serves(backend):
        return passthrough.Passthrough(backend)
    if kind is BackendKind.ANTHROPIC:
        return translated.Translated(backend, prepare)
    return translated.Refused(kind.value)
