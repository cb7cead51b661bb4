"""A server tool call that failed: it becomes the spec's error block, never a crashed request.

Anthropic answers a failed search or fetch with HTTP 200 and an error object as the result
block's `content` (`{"type": "web_search_tool_result_error", "error_code": "unavailable"}`); the
loop turns a `ToolError` raised by a provider or the fetcher into exactly that. A request that is
itself invalid (both domain lists given, a forged token) is an `exceptions.InvalidParams` instead:
a 400 for that request, never a tool error.
"""

from __future__ import annotations

# The error codes of the spec (docs/server-tools.md), by tool.
SEARCH_ERROR_CODES = frozenset(
    {
        "invalid_tool_input",
        "unavailable",
        "max_uses_exceeded",
        "too_many_requests",
        "query_too_long",
        "request_too_large",
    }
)
FETCH_ERROR_CODES = frozenset(
    {
        "invalid_tool_input",
        "url_too_long",
        "url_not_allowed",
        "url_not_in_prior_context",
        "url_not_accessible",
        "unsupported_content_type",
        "too_many_requests",
        "max_uses_exceeded",
        "unavailable",
    }
)


class ToolError(Exception):
    """A tool call that failed, with the spec's `error_code` and a message for the log and the model."""

    def __init__(self, error_code: str, message: str = "") -> None:
        self.error_code = error_code
        self.message = message or error_code.replace("_", " ")
        super().__init__(f"{error_code}: {self.message}")
