"""The `@sim:` directives: how one request asks the simulator for an outcome.

They are documented in `batchd.backends.simulator`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from batchd import exceptions

_DIRECTIVE = re.compile(r"@sim:(\S*)")
_ERRORS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_ERROR_ALIASES = {
    **{name: name for name in _ERRORS},
    **{name.removesuffix("_error"): name for name in _ERRORS},
    **{str(status): name for name, status in _ERRORS.items()},
    "invalid": "invalid_request_error",
    "auth": "authentication_error",
    "too_large": "request_too_large",
}
_FAILURES = {
    "429": (429, "rate_limit_error"),
    "500": (500, "api_error"),
    "503": (503, "api_error"),
    "529": (529, "overloaded_error"),
    "timeout": (504, "timeout_error"),
}
_REFUSAL_CATEGORIES = {
    "cyber",
    "bio",
    "frontier_llm",
    "reasoning_extraction",
    "general_harms",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Directives:
    """The `@sim:` directives of one request."""

    error: str | None = None
    fail: str | None = None
    fail_attempts: int | None = None  # None: every attempt fails
    delay: float = 0.0
    tokens: int | None = None
    refusal: bool = False
    refusal_category: str | None = None
    tool: str | None = None


NONE = Directives()


def parse(text: str) -> Directives:
    """The `@sim:` directives of `text`; a bad one raises a final 400 BackendError."""
    values: dict[str, Any] = {}
    for match in _DIRECTIVE.finditer(text):
        key, _, value = match.group(1).partition("=")
        try:
            values.update(_directive(key, value))
        except ValueError as exc:
            raise exceptions.BackendError(
                f"Invalid simulator directive '{match.group()}': {exc}",
                status=400,
                error_type="invalid_request_error",
            ) from exc
    return Directives(**values) if values else NONE


def strip(text: str) -> str:
    """`text` without its directives."""
    return _DIRECTIVE.sub("", text)


def _directive(key: str, value: str) -> dict[str, Any]:
    if key == "error":
        if value not in _ERROR_ALIASES:
            raise ValueError(f"unknown error type; use one of {', '.join(_ERRORS)}")
        return {"error": _ERROR_ALIASES[value]}
    if key == "fail":
        code, _, times = value.partition("x")
        if code not in _FAILURES:
            raise ValueError("expected CODE or CODExN with CODE in 429, 500, 503, 529, timeout")
        return {"fail": code, "fail_attempts": _count(times) if times else None}
    if key == "delay":
        delay = float(value)
        if not (math.isfinite(delay) and delay >= 0):
            raise ValueError("the delay must be a number of seconds >= 0")
        return {"delay": delay}
    if key == "tokens":
        return {"tokens": _count(value)}
    if key == "refusal":
        if value and value not in _REFUSAL_CATEGORIES:
            raise ValueError(f"unknown category; use one of {', '.join(sorted(_REFUSAL_CATEGORIES))}")
        return {"refusal": True, "refusal_category": value or None}
    if key == "tool":
        if not value:
            raise ValueError("name the tool: @sim:tool=NAME")
        return {"tool": value}
    raise ValueError(f"unknown directive {key!r}")


def _count(value: str) -> int:
    if not value.isdigit():
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(value)


def raise_requested_failure(directives: Directives, attempt: int) -> None:
    """Raise what `@sim:error` or `@sim:fail` asks for on this attempt, if anything."""
    if directives.error is not None:
        raise exceptions.BackendError(
            f"Simulated {directives.error} requested by @sim:error",
            status=_ERRORS[directives.error],
            error_type=directives.error,
            retryable=False,
        )
    if directives.fail is None:
        return
    if directives.fail_attempts is not None and attempt > directives.fail_attempts:
        return
    if directives.fail == "timeout":
        raise exceptions.BackendTimeout(f"Simulated timeout requested by @sim:fail (attempt {attempt})")
    status, error_type = _FAILURES[directives.fail]
    raise exceptions.BackendError(
        f"Simulated {status} {error_type} requested by @sim:fail (attempt {attempt})",
        status=status,
        error_type=error_type,
        retryable=True,
        retry_after=0.0 if status == 429 else None,
    )
