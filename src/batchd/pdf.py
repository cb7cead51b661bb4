"""Per-page text of a base64-encoded PDF, as used for citations and token counts."""

from __future__ import annotations

import base64
import binascii
import functools
import io

import pypdf

from batchd import exceptions

# A batch often repeats one document across many requests; parsing is the expensive part.
_CACHE_SIZE = 16


@functools.lru_cache(maxsize=_CACHE_SIZE)
def extract_pages(data: str) -> tuple[str, ...]:
    """Return the extracted text of each page of the base64 PDF `data`, in page order.

    Raises `exceptions.InvalidParams` when `data` is not base64 or not a readable PDF.
    """
    try:
        raw = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise exceptions.InvalidParams(f"The PDF is not valid base64: {exc}") from exc
    if not raw.startswith(b"%PDF-"):
        raise exceptions.InvalidParams("The PDF specified was not valid: no %PDF- header.")
    try:
        reader = pypdf.PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise exceptions.InvalidParams("The PDF specified is password protected.")
        return tuple(page.extract_text() or "" for page in reader.pages)
    except exceptions.InvalidParams:
        raise
    except Exception as exc:  # pypdf raises many unrelated types for a corrupt file
        raise exceptions.InvalidParams(f"The PDF specified was not valid: {exc}") from exc
