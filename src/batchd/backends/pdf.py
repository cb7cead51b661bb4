"""Per-page text of a base64-encoded PDF, as used for citations and token counts."""

from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import io

from batchd import exceptions

# A batch often repeats one document in many requests, and parsing is the slow part.
# Keyed by a digest, so the cache never holds on to the (possibly huge) documents.
_CACHE_SIZE = 32
_cache: collections.OrderedDict[bytes, tuple[str, ...]] = collections.OrderedDict()


def extract_pages(data: str) -> tuple[str, ...]:
    """Return the extracted text of each page of the base64 PDF `data`, in page order.

    Raises `exceptions.InvalidParams` when `data` is not base64 or not a readable PDF.
    """
    key = hashlib.blake2b(data.encode(), digest_size=16).digest()
    pages = _cache.get(key)
    if pages is None:
        pages = _parse(data)
        _cache[key] = pages
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    else:
        _cache.move_to_end(key)
    return pages


def _parse(data: str) -> tuple[str, ...]:
    try:
        raw = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise exceptions.InvalidParams(f"The PDF is not valid base64: {exc}") from exc
    if not raw.startswith(b"%PDF-"):
        raise exceptions.InvalidParams("The PDF specified was not valid: no header.")
    try:
        import pypdf  # imported on first use: it costs ~0.5 s at start-up

        reader = pypdf.PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise exceptions.InvalidParams("The PDF specified is password protected.")
        return tuple(page.extract_text() or "" for page in reader.pages)
    except exceptions.InvalidParams:
        raise
    except Exception as exc:  # pypdf raises many unrelated types for a corrupt file
        message = f"The PDF specified was not valid: {exc}"
        raise exceptions.InvalidParams(message) from exc
