"""The built-in simulator: a deterministic backend that can produce every kind of result.

The same params always give the same Message (id included), whatever the order of calls.
Nothing is fetched and no code is run; search results and program output are made up.

Tokens
    A token is a whitespace-separated word. `output_tokens` counts the words of `text` and
    `thinking` blocks plus, for `tool_use` / `server_tool_use` inputs, one token per 4 bytes
    of their compact JSON; it never exceeds `max_tokens`. `input_tokens` counts the words of
    `system`, every message and document (text, content blocks, the extracted text of base64
    PDFs), 1,600 per image, and one per 4 bytes of JSON for tool definitions and other blocks.

What comes back
    * `text` of English-like sentences, 20-150 words long (varies by request), opening with
      "You asked about: <the first words of the last user message>" so that a stop
      sequence taken from the prompt is sure to occur. Past `max_tokens` the content is cut
      at exactly `max_tokens` tokens (`stop_reason: "max_tokens"`); a stop sequence cuts the
      text just before it (`"stop_sequence"`, `stop_sequence` set).
    * `thinking` enabled or adaptive: a leading `thinking` block of at most `budget_tokens`
      and at most half of `max_tokens`, with a made-up `signature`.
    * Custom tools: a `tool_use` block whose `input` satisfies the tool's `input_schema`
      (`stop_reason: "tool_use"`) when `tool_choice` is `any` or `tool`, or `auto` and the last
      user message names the tool; never with `none`. A trailing `tool_result` is answered
      with text that quotes it.
    * Documents with `citations.enabled`: quotes with `char_location` (plain text),
      `page_location` (base64 PDF) or `content_block_location` (content) citations. A PDF
      that cannot be read fails the request with a final 400 `invalid_request_error`.
    * A `web_search_*` tool: `server_tool_use` + `web_search_tool_result` with results under
      https://search.batchd.invalid/, then text citing them (`web_search_result_location`).
    * A `code_execution_*` tool: a small Python program and its output. Version
      `code_execution_20250522` answers with `code_execution_tool_result`; later versions,
      like the real API, with `bash_code_execution` and `bash_code_execution_tool_result`.
      The message then carries a `container`.

Directives
    Words of the form `@sim:KEY=VALUE` or `@sim:KEY` anywhere in the text of the last user
    message ask for an outcome; several may be combined, and none is echoed back.

    ``@sim:error=TYPE``     fail at once, not retryable: invalid_request_error (400),
                            authentication_error (401), billing_error (402),
                            permission_error (403), not_found_error (404),
                            request_too_large (413), rate_limit_error (429), api_error (500),
                            timeout_error (504), overloaded_error (529). TYPE may drop the
                            `_error` suffix (`rate_limit`, `overloaded`, `invalid_request`,
                            `api`...) or be the status code (`@sim:error=529`).
    ``@sim:fail=CODE``      fail with a retryable error on every attempt; CODE is 429
                            (rate_limit_error, retry_after 0), 500 (api_error), 503
                            (api_error), 529 (overloaded_error) or `timeout` (BackendTimeout).
    ``@sim:fail=CODExN``    the same on attempts 1..N only, then succeed (`@sim:fail=529x2`).
    ``@sim:delay=SECONDS``  wait that long before answering (failures are raised at once).
    ``@sim:tokens=N``       make the answer text exactly N tokens (before `max_tokens`).
    ``@sim:refusal``        answer with a refusal (`stop_reason: "refusal"`);
                            ``@sim:refusal=CATEGORY`` sets `stop_details.category`
                            (cyber, bio, frontier_llm, reasoning_extraction, general_harms).
    ``@sim:tool=NAME``      call the tool NAME whatever `tool_choice` says.

    An unknown or malformed directive fails the request with a final 400
    `invalid_request_error` naming it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import orjson

from batchd import exceptions
from batchd.backends import sim_directives, sim_message

class SimulatedBackend:
    """A deterministic stand-in for a model; see the module docstring for what it does."""

    name = "simulated"

    def __init__(self, *, latency: float = 0.0, token_latency: float = 0.0) -> None:
        self.latency = latency
        self.token_latency = token_latency

    async def create_message(self, params: dict[str, Any], *, attempt: int = 1) -> dict[str, Any]:
        """Answer `params` (a validated Messages request); `attempt` counts from 1."""
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
        if pause > 0:
            await asyncio.sleep(pause)
        return message

    async def aclose(self) -> None:
        return None


def _digest(params: dict[str, Any]) -> bytes:
    try:
        blob = orjson.dumps(params, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits; never in practice
        blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.blake2b(blob, digest_size=32).digest()
