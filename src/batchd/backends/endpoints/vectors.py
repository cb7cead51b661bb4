"""The simulator's embeddings: deterministic unit vectors seeded by a hash of (model, input).

Each input's vector is SHAKE-256 of the model and the input, read as `dimensions` signed 16-bit
numbers and scaled to length 1, so the same input always gets the same vector and a shorter
`dimensions` is the longer vector's prefix, renormalised (as OpenAI's shortened embeddings are).
A token is a whitespace-separated word (the simulator's rule); a token-id input counts its ids.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

from batchd.exceptions import InvalidLine

DEFAULT_DIMENSIONS = 1536  # text-embedding-3-small's
MAX_DIMENSIONS = 8192
MAX_INPUTS = 2048  # OpenAI's most inputs per request


def vector(model: str, text: str, dimensions: int) -> list[float]:
    raw = hashlib.shake_256(f"{model}\0{text}".encode()).digest(2 * dimensions)
    values = struct.unpack(f"<{dimensions}h", raw)
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _inputs(raw: Any) -> list[tuple[str, int]]:
    """Each input as (the text its vector is seeded by, its tokens)."""
    if isinstance(raw, str):
        return [(raw, len(raw.split()))]
    if isinstance(raw, list) and raw and all(type(t) is int for t in raw):
        return [(" ".join(map(str, raw)), len(raw))]
    if not isinstance(raw, list) or not raw:
        raise InvalidLine("input: must be a string, a list of strings or token ids, not empty", param="input")
    if len(raw) > MAX_INPUTS:
        raise InvalidLine(f"input: at most {MAX_INPUTS} inputs", param="input")
    found = []
    for item in raw:
        if isinstance(item, str):
            found.append((item, len(item.split())))
        elif isinstance(item, list) and all(type(t) is int for t in item):
            found.append((" ".join(map(str, item)), len(item)))
        else:
            raise InvalidLine("input: every item must be a string or a list of token ids", param="input")
    return found


def embed(body: dict[str, Any]) -> dict[str, Any]:
    """The `/v1/embeddings` answer to `body`."""
    model = body["model"]
    dimensions = body.get("dimensions")
    if dimensions is None:
        dimensions = DEFAULT_DIMENSIONS
    if type(dimensions) is not int or not 1 <= dimensions <= MAX_DIMENSIONS:
        raise InvalidLine(f"dimensions: must be an integer from 1 to {MAX_DIMENSIONS}", param="dimensions")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise InvalidLine("encoding_format: must be float or base64", param="encoding_format")
    data = []
    tokens = 0
    for i, (text, count) in enumerate(_inputs(body.get("input"))):
        values = vector(model, text, dimensions)
        tokens += count
        encoded: list[float] | str = values
        if encoding == "base64":  # little-endian float32, as OpenAI sends it
            encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *values)).decode()
        data.append({"object": "embedding", "index": i, "embedding": encoded})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
