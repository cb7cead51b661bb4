"""The `anthropic` backend: any Anthropic-compatible `POST /v1/messages`.

Anthropic's API itself, vLLM, SGLang, llama.cpp's server, Ollama >= 0.14. The params arrive
prepared (validated, seed shorthand expanded), so they are sent as they are, with the upstream
model name, `anthropic-version`, the auth header and the `anthropic-beta` values the params need.
Token counts are the upstream's own `POST /v1/messages/count_tokens`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from batchd import exceptions, models
from batchd.backends import anthropic_stream, base
from batchd.backends.http import Upstream, auth_header
from batchd.backends.streaming import Event
from batchd.config.routes import AuthMode, BackendKind, ReasoningMode
from batchd.params import COUNT_FIELDS

ANTHROPIC_VERSION = "2023-06-01"
# Tool types and top-level params that need a beta header on Anthropic's API.
_TOOL_BETAS = {
    "code_execution_20250522": "code-execution-2025-05-22",
    "code_execution_20250825": "code-execution-2025-08-25",
    "computer_20241022": "computer-use-2024-10-22",
    "computer_20250124": "computer-use-2025-01-24",
    "web_fetch_20250910": "web-fetch-2025-09-10",
}
_PARAM_BETAS = {
    "mcp_servers": "mcp-client-2025-04-04",
    "context_management": "context-management-2025-06-27",
    "output_format": "structured-outputs-2025-11-13",
    "container": "code-execution-2025-08-25",
}


def betas_for(params: dict[str, Any]) -> list[str]:
    """The `anthropic-beta` values a request's params need."""
    found: list[str] = []
    for tool in params.get("tools") or ():
        beta = _TOOL_BETAS.get(tool.get("type", "")) if isinstance(tool, dict) else None
        if beta and beta not in found:
            found.append(beta)
    for key, beta in _PARAM_BETAS.items():
        if key in params and beta not in found:
            found.append(beta)
    return found


def _base(url: str) -> str:
    # Accept both Anthropic's convention (no /v1) and the OpenAI one (…/v1).
    return url[: -len("/v1")] if url.rstrip("/").endswith("/v1") else url


class AnthropicBackend:
    kind = BackendKind.ANTHROPIC
    instant: base.InstantAnswer | None = None  # every answer comes over HTTP

    def __init__(
        self,
        base_url: str,
        *,
        upstream_model: str = "",
        api_key: str | None = None,
        auth: AuthMode = AuthMode.X_API_KEY,
        betas: Sequence[str] = (),
        reasoning: ReasoningMode = ReasoningMode.NONE,
        headers: dict[str, str] | None = None,
        concurrency: int = 64,
        timeout: float = 600.0,
    ) -> None:
        fixed = {"anthropic-version": ANTHROPIC_VERSION, **(headers or {})}
        fixed.update(auth_header(api_key, auth))
        self.upstream_model = upstream_model
        self.betas = tuple(betas)
        self.reasoning = reasoning
        self.upstream = Upstream(
            "anthropic upstream",
            _base(base_url.rstrip("/")),
            concurrency=concurrency,
            timeout=timeout,
            headers=fixed,
        )

    async def create_message(
        self, params: dict[str, Any], *, attempt: int = 1, betas: Sequence[str] = ()
    ) -> dict[str, Any]:
        requested = params["model"]
        data, _ = await self.upstream.post_json(
            "/v1/messages", self.request_body(params), self._headers(params, betas)
        )
        return normalise_message(data, requested, self.upstream.name)

    def stream_message(self, params: dict[str, Any], *, betas: Sequence[str] = ()) -> AsyncIterator[Event]:
        """The upstream's own stream, passed through (anthropic_stream.py)."""
        body = {**self.request_body(params), "stream": True}
        return anthropic_stream.passthrough(
            self.upstream, body, self._headers(params, betas), model=params["model"], whole=normalise_message
        )

    def request_body(self, params: dict[str, Any]) -> dict[str, Any]:
        """The `/v1/messages` body sent upstream for `params`."""
        body = {k: v for k, v in params.items() if k != "stream"}
        body["model"] = self.upstream_model or params["model"]
        if self.reasoning.sends_template_kwargs:
            # Engines (llama.cpp, vLLM) think by default and ignore `thinking: disabled` here.
            on = (params.get("thinking") or {}).get("type") in ("enabled", "adaptive")
            body["chat_template_kwargs"] = {"enable_thinking": on}
        return body

    async def count_tokens(self, params: dict[str, Any], *, betas: Sequence[str] = ()) -> int:
        """The upstream's own `POST /v1/messages/count_tokens`."""
        body = {k: v for k, v in params.items() if k in COUNT_FIELDS}
        body["model"] = self.upstream_model or params["model"]
        data, _ = await self.upstream.post_json(
            "/v1/messages/count_tokens", body, self._headers(params, betas)
        )
        count = data.get("input_tokens")
        if type(count) is not int or count < 0:
            raise exceptions.BackendError(
                f"{self.upstream.name} answered a token count without input_tokens", status=502
            )
        return count

    async def model_ids(self) -> list[str]:
        """The upstream's models (`GET /v1/models`, its first 1,000)."""
        data, _ = await self.upstream.get_json("/v1/models?limit=1000")
        return [str(m["id"]) for m in data.get("data") or () if isinstance(m, dict) and m.get("id")]

    def _headers(self, params: dict[str, Any], betas: Sequence[str]) -> dict[str, str] | None:
        wanted = [*self.betas, *betas]
        for beta in betas_for(params):
            if beta not in wanted:
                wanted.append(beta)
        return {"anthropic-beta": ",".join(wanted)} if wanted else None

    async def aclose(self) -> None:
        await self.upstream.aclose()


def normalise_message(data: dict[str, Any], model: str, upstream: str) -> dict[str, Any]:
    """Check an upstream Message and fill the fields compatible servers sometimes leave out."""
    if data.get("type") == "error":
        err = data.get("error") or {}
        raise exceptions.BackendError(
            f"{upstream} answered with an error: {err.get('message', err)}",
            status=500,
            error_type=err.get("type") or "api_error",
            retryable=False,
        )
    content = data.get("content")
    if not isinstance(content, list):
        raise exceptions.BackendError(
            f"{upstream} answered with something that is not a Message (no content list)",
            status=502,
            retryable=False,
        )
    usage = dict(data.get("usage") or {})
    usage.setdefault("input_tokens", 0)
    usage.setdefault("output_tokens", 0)
    usage.setdefault("cache_creation_input_tokens", 0)
    usage.setdefault("cache_read_input_tokens", 0)
    msg_id = data.get("id")
    if not isinstance(msg_id, str) or not msg_id:
        msg_id = "msg_" + models.new_request_id()[4:]
    return {
        **data,
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": data.get("stop_reason") or "end_turn",
        "stop_sequence": data.get("stop_sequence"),
        "usage": usage,
    }
