"""`POST /v1/messages/count_tokens`: its body, validated as the Messages API's params are.

A count takes the fields that shape the prompt (the SDK's MessageCountTokensParams and its beta
twin) and no `max_tokens`. Strict mode refuses any other key, as the real API does; lenient mode
drops them (a body built for `messages.create` may be counted as it is). The params handed to a
backend carry `max_tokens = COUNT_MAX_TOKENS` only so that they are well-formed Messages params:
backends never send it to be generated against.
"""

from __future__ import annotations

from typing import Any

from batchd import exceptions
from batchd.params import checks as params_checks
from batchd.params import shorthand as params_shorthand
from batchd.params import validate as params_validate

#: The body fields of a count (both SDK generations), besides the lenient mode's shorthand.
COUNT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "output_format",
        "cache_control",
        "speed",
        "billing_policy",
        "compaction",
        "context_management",
        "mcp_servers",
    }
)
COUNT_MAX_TOKENS = 1 << 20  # a placeholder, above any thinking budget


def prepare_count(
    body: dict[str, Any],
    *,
    strict: bool = False,
    default_thinking_budget: int = params_validate.DEFAULT_THINKING_BUDGET,
) -> dict[str, Any]:
    """The prepared params of a count_tokens body; raises exceptions.InvalidParams."""
    kept: dict[str, Any] = {}
    for key, value in body.items():
        if key in COUNT_FIELDS or (not strict and key in params_shorthand.KEYS):
            kept[key] = value
        elif strict:
            message = params_checks.Invalid(params_checks.EXTRA, key).render()
            raise exceptions.InvalidParams(message)
    kept["max_tokens"] = COUNT_MAX_TOKENS
    return params_validate.prepare(kept, strict=strict, default_thinking_budget=default_thinking_budget)
