"""The built-in simulator: a deterministic backend that can produce any kind of result.

The same params always give the same Message, id included, whatever the order of calls.
Nothing is fetched and no code runs: search results and program output are made up.

## Tokens

A token is a whitespace-separated word. `output_tokens` counts the words of `text` and
`thinking` blocks, plus one token per 4 bytes of compact JSON for the input of each
`tool_use` and `server_tool_use` block and for a structured answer's text; it never
exceeds `max_tokens`. `input_tokens` counts the words of `system`, of every message and
of every document (plain text, content blocks, the extracted text of a base64 PDF),
1,600 per image, and one token per 4 bytes of JSON for tool definitions, an output
format's schema and other blocks. `POST /v1/messages/count_tokens` gives the same
`input_tokens`.

## What comes back

- `text`: English-like sentences, 20 to 150 words depending on the request. The text
  opens with "You asked about: " and the first words of the last user message, so a stop
  sequence taken from the prompt is sure to occur. Past `max_tokens` the content is cut
  at exactly `max_tokens` tokens (`stop_reason: "max_tokens"`). A stop sequence cuts the
  text just before it (`stop_reason: "stop_sequence"`, with `stop_sequence` set).
- Thinking (`enabled` or `adaptive`): a leading `thinking` block of at most
  `budget_tokens` and at most half of `max_tokens`, with a made-up `signature`.
- Custom tools: a `tool_use` block whose `input` satisfies the tool's `input_schema`
  (`stop_reason: "tool_use"`). It comes when `tool_choice` is `any` or `tool`, or when
  it is `auto` and the last user message names the tool; never with `none`. A trailing
  `tool_result` is answered with text that quotes it.
- Structured outputs (`output_config.format` or `output_format` with a JSON schema): the
  answer is one `text` block of compact JSON that satisfies the schema (`type`,
  `properties`/`required`, `items`, `enum`, `const`, `anyOf`, local `$ref`s, bounds,
  common `format`s; optional fields come and go with the request), after any thinking,
  search or code blocks but with no prose around it. A tool call still comes first when
  one is due, and a refusal stays prose. `max_tokens` cuts the JSON (`stop_reason:
  "max_tokens"`). With citations enabled on a document it fails with 400, as the real API
  does.
- Documents with `citations.enabled`: quotes cited by `char_location` (plain text),
  `page_location` (base64 PDF) or `content_block_location` (content). A PDF that cannot
  be read fails the request with a final 400 `invalid_request_error`.
- A `web_search_*` tool: `server_tool_use` and `web_search_tool_result` blocks with
  results under `https://search.batchd.invalid/`, then text that cites them
  (`web_search_result_location`) and `usage.server_tool_use.web_search_requests`.
- A `code_execution_*` tool: a small Python program and its output, plus a `container`.
  `code_execution_20250522` answers with `code_execution_tool_result`; later versions
  do as the real API does: `bash_code_execution` and `bash_code_execution_tool_result`.

## Directives

Words of the form `@sim:KEY=VALUE` or `@sim:KEY` in the text of the last user message
ask for an outcome. Several may be combined; none is echoed back.

- `@sim:error=TYPE`: fail at once, not retryable. TYPE is one of
  `invalid_request_error` (400), `authentication_error` (401), `billing_error` (402),
  `permission_error` (403), `not_found_error` (404), `request_too_large` (413),
  `rate_limit_error` (429), `api_error` (500), `timeout_error` (504) or
  `overloaded_error` (529). It may drop the `_error` suffix (`rate_limit`,
  `overloaded`, `invalid_request`, `api`...) or be the status code (`@sim:error=529`).
- `@sim:fail=CODE`: fail with a retryable error on every attempt. CODE is `429`
  (`rate_limit_error`, `retry_after` 0), `500` (`api_error`), `503` (`api_error`),
  `529` (`overloaded_error`) or `timeout` (a `BackendTimeout`).
- `@sim:fail=CODExN`: the same on attempts 1 to N only, then succeed
  (`@sim:fail=529x2`).
- `@sim:delay=SECONDS`: wait that long before answering. Failures are raised at once.
- `@sim:tokens=N`: make the answer text exactly N tokens long (before `max_tokens`).
- `@sim:refusal`: refuse (`stop_reason: "refusal"`, `stop_details` of type `refusal`);
  `@sim:refusal=CATEGORY` also sets `stop_details.category` (`cyber`, `bio`,
  `frontier_llm`, `reasoning_extraction` or `general_harms`).
- `@sim:tool=NAME`: call the client tool NAME, whatever `tool_choice` says.

An unknown or malformed directive fails the request with a final 400
`invalid_request_error` that names it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import orjson

from batchd.backends import base
from batchd.backends.simulator import directives as sim_directives
from batchd.backends.simulator import input as sim_input
from batchd.backends.simulator import message as sim_message
from batchd.config.routes import BackendKind


class SimulatedBackend:
    """A deterministic stand-in for a model; the module docstring says what it does."""

    kind = BackendKind.SIMULATED

    def __init__(self, *, latency: float = 0.0, token_latency: float = 0.0) -> None:
        self.latency = latency
        self.token_latency = token_latency

    @property
    def instant(self) -> base.InstantAnswer | None:
        """`answer`, with no latency of its own: it is the whole call unless a request asks for a delay."""
        return self.answer if self.latency == 0 and self.token_latency == 0 else None

    async def create_message(
        self, params: dict[str, Any], *, attempt: int = 1, betas: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Answer `params` (a validated Messages request); `attempt` counts from 1; betas are ignored."""
        message, pause = self.answer(params, attempt=attempt)
        if pause > 0:
            await asyncio.sleep(pause)
        return message

    def answer(self, params: dict[str, Any], *, attempt: int = 1) -> tuple[dict[str, Any], float]:
        """The Message for `params` and the seconds to wait before giving it; raises as the API fails."""
        digest = _digest(params)
        messages = params.get("messages") or []
        last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
        user_text = sim_message.text_of(last_user.get("content")) if last_user else ""
        directives = sim_directives.NONE
        if "@sim:" in user_text:
            directives = sim_directives.parse(user_text)
            user_text = sim_directives.strip(user_text)
            sim_directives.raise_requested_failure(directives, attempt)
        message = sim_message.compose(params, digest, user_text, directives)
        pause = self.latency + directives.delay
        if self.token_latency:
            pause += self.token_latency * message["usage"]["output_tokens"]
        return message, pause

    async def count_tokens(self, params: dict[str, Any], *, betas: Sequence[str] = ()) -> int:
        """The input tokens of `params` by the simulator's rule (as its Messages' `usage`)."""
        return sim_input.read(params)[0]

    async def aclose(self) -> None:
        return None


def _digest(params: dict[str, Any]) -> bytes:
    try:
        blob = orjson.dumps(params, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits; never in practice
        blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.blake2b(blob, digest_size=32).digest()
