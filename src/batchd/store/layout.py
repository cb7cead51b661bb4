"""How the SQL stores lay requests out: a request's key, and its results line stored whole."""

from __future__ import annotations

KEY_BITS = 32  # a request's key is batch seq << 32 | index
INDEX_MASK = (1 << KEY_BITS) - 1  # key & INDEX_MASK: the request's index in its batch
RESULTS_PAGE = 4096  # rows per results chunk (~4 MB for 1 KB results)


def key(seq: int, index: int) -> int:
    """The key of request `index` of batch `seq`."""
    return (seq << KEY_BITS) | index


def key_range(seq: int) -> tuple[int, int]:
    """The first and last request key of batch `seq`."""
    return seq << KEY_BITS, ((seq + 1) << KEY_BITS) - 1


def render_line(custom_id: str, result: bytes) -> bytes:
    """The results line, stored whole so a download is concatenation."""
    return b'{"custom_id":"' + custom_id.encode() + b'","result":' + result + b"}\n"
