"""The `anthropic-version` header, which the real API requires; batchd does too in strict mode."""

from __future__ import annotations

from starlette.requests import Request

from batchd import exceptions
from batchd.config import Settings

REQUIRED = "anthropic-version: header is required"


def check(request: Request, settings: Settings) -> None:
    """In strict mode, a request without `anthropic-version` is a 400, as on the real API."""
    if settings.strict and not request.headers.get("anthropic-version", "").strip():
        raise exceptions.InvalidRequest(REQUIRED)
