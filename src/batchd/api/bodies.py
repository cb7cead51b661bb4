"""Request bodies read with a size limit: refused (413) as soon as they pass it, never buffered whole."""

from __future__ import annotations

from starlette.requests import Request

from batchd import exceptions


async def read_body(request: Request, limit: int, what: str = "a message batch") -> bytearray:
    """The whole body, refusing (413) as soon as it passes `limit` bytes."""
    too_large = exceptions.RequestTooLarge(
        f"Request exceeds the maximum allowed number of bytes ({limit}) for {what}"
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return body
