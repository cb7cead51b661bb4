"""A batch request's `params`, validated and normalised as the Messages API does it.

`prepare` is the one entry point (validate.py); the checks are split by what they look at:
messages and content blocks (blocks.py), tools and tool_choice (tools.py), the seed shorthand
(shorthand.py), structured outputs (output.py), and the small located-error helpers they share
(checks.py). `prepare_count` validates a count_tokens body (count.py).
"""

from __future__ import annotations

from batchd.params.count import COUNT_FIELDS, COUNT_MAX_TOKENS, prepare_count
from batchd.params.validate import (
    DEFAULT_THINKING_BUDGET,
    MAX_DEPTH,
    MIN_THINKING_BUDGET,
    SHORTHAND_DOC,
    TOO_DEEP,
    decode,
    prepare,
)

__all__ = [
    "COUNT_FIELDS",
    "COUNT_MAX_TOKENS",
    "DEFAULT_THINKING_BUDGET",
    "MAX_DEPTH",
    "MIN_THINKING_BUDGET",
    "SHORTHAND_DOC",
    "TOO_DEEP",
    "decode",
    "prepare",
    "prepare_count",
]
