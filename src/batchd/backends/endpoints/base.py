"""What every backend's OpenAI endpoints share: the endpoints, the protocol, the answer and error shapes."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from typing import Any, Protocol

from batchd import exceptions

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"
ENDPOINTS = (CHAT, COMPLETIONS, EMBEDDINGS)

#: A synchronous answer (the simulator's): the `response` object and the seconds due before it.
InstantCall = Callable[[str, dict[str, Any], int], tuple[dict[str, Any], float]]


class Endpoints(Protocol):
    """A backend's OpenAI endpoints."""

    @property
    def instant(self) -> InstantCall | None:
        """The synchronous answer of a backend that needs no I/O, else None."""
        ...

    async def call(self, endpoint: str, body: dict[str, Any], *, attempt: int = 1) -> dict[str, Any]:
        """The `response` object for `body` sent to `endpoint` (one of ENDPOINTS)."""
        ...


_TO_BASE62 = bytes.maketrans(b"+/", b"xQ")  # base64's two non-alphanumerics


_POOLED = 256  # ids made from one read of the OS's random source
_pool: list[str] = []  # ready ids' random parts (list.pop is atomic: threads may share it)


def random_id(prefix: str) -> str:
    """`prefix` + 24 random base62 characters (OpenAI's form; ~143 bits): 18 bytes of the OS's
    random source in base64, its two non-alphanumerics mapped onto letters. The bytes are read
    for _POOLED ids at once: a system call per id (~9 µs here) cost more than a tenth of a
    simulated line, and a `secrets.choice` per character, as `models.new_batch_request_id` does,
    more than the rest of it."""
    try:
        return prefix + _pool.pop()
    except IndexError:
        raw = base64.b64encode(os.urandom(18 * _POOLED)).translate(_TO_BASE62).decode()
        _pool.extend(raw[i : i + 24] for i in range(0, len(raw), 24))
        return prefix + _pool.pop()


def answer(body: dict[str, Any], request_id: str | None = None, status: int = 200) -> dict[str, Any]:
    """The `response` object of a line: the status, a request id (`req_…` when none is given), the body."""
    return {"status_code": status, "request_id": request_id or random_id("req_"), "body": body}


def envelope(
    message: str, error_type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error body: all four keys, always."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def unsupported(endpoint: str, backend: str) -> exceptions.InvalidLine:
    return exceptions.InvalidLine(
        f"{endpoint} cannot run on the {backend} backend this model routes to", param="url"
    )
