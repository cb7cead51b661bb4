"""What a GGUF file says about itself: its metadata keys, read without loading the model.

Only the header is read (the keys and their values, skipped but for the one asked for), so a
multi-gigabyte model is looked at in a few milliseconds. The format: magic `GGUF`, a version
(2 or 3: counts are 64-bit), the tensor and key counts, then each key as a length-prefixed
string, a value type and the value; arrays hold a type, a count and their items.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from batchd import exceptions

CHAT_TEMPLATE = "tokenizer.chat_template"
MAGIC = b"GGUF"
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # type -> bytes
_STRING, _ARRAY = 8, 9


def metadata_value(path: str | Path, key: str) -> str | int | float | None:
    """The value of metadata `key` when it is a string or a number; None when the file lacks it
    (or it is an array). Raises ConfigError when the file is not a GGUF file of version 2 or 3."""
    try:
        with Path(path).open("rb") as fh:
            return _find(fh, key, str(path))
    except (OSError, struct.error, UnicodeDecodeError) as exc:
        raise exceptions.ConfigError(f"gguf: {path} cannot be read as a GGUF file: {exc}") from exc


def has_chat_template(path: str | Path) -> bool:
    value = metadata_value(path, CHAT_TEMPLATE)
    return isinstance(value, str) and bool(value.strip())


def _find(fh: BinaryIO, key: str, name: str) -> str | int | float | None:
    magic, version = fh.read(4), _unpack(fh, "<I")
    if magic != MAGIC or version not in (2, 3):
        raise exceptions.ConfigError(f"gguf: {name} is not a GGUF file (version 2 or 3)")
    _unpack(fh, "<Q")  # tensors
    for _ in range(_unpack(fh, "<Q")):
        found = _string(fh)
        kind = _unpack(fh, "<I")
        if found == key and kind == _STRING:
            return _string(fh)
        if found == key and kind in _FIXED:
            return _scalar(fh, kind)
        _skip(fh, kind)
    return None


def _unpack(fh: BinaryIO, fmt: str) -> int:
    size = struct.calcsize(fmt)
    value: int = struct.unpack(fmt, fh.read(size))[0]
    return value


def _string(fh: BinaryIO) -> str:
    return fh.read(_unpack(fh, "<Q")).decode("utf-8")


def _scalar(fh: BinaryIO, kind: int) -> int | float:
    fmt = {
        0: "<B",
        1: "<b",
        2: "<H",
        3: "<h",
        4: "<I",
        5: "<i",
        6: "<f",
        7: "<?",
        10: "<Q",
        11: "<q",
        12: "<d",
    }
    value: int | float = struct.unpack(fmt[kind], fh.read(_FIXED[kind]))[0]
    return value


def _skip(fh: BinaryIO, kind: int) -> None:
    if kind in _FIXED:
        fh.seek(_FIXED[kind], 1)
    elif kind == _STRING:
        fh.seek(_unpack(fh, "<Q"), 1)
    elif kind == _ARRAY:
        item, count = _unpack(fh, "<I"), _unpack(fh, "<Q")
        if item in _FIXED:
            fh.seek(_FIXED[item] * count, 1)
        else:
            for _ in range(count):
                _skip(fh, item)
    else:
        raise struct.error(f"unknown value type {kind}")
