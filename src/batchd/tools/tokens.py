"""batchd's own `encrypted_content` / `encrypted_index`: authenticated, encrypted, opaque to clients.

A web search result carries the page text the model saw in `encrypted_content`; a citation of it
carries its place in `encrypted_index`. A client sends both back unchanged in later turns, and
batchd decodes them to show the model the same text again. Each token is

    base64( version byte | 12-byte nonce | AES-256-GCM(zlib(JSON payload)) )

with the token's kind (`content`, `index`) as associated data, so a token of one kind never passes
for another. A token that was altered, truncated, made with another key, or minted by Anthropic's
API (whose tokens batchd cannot read) fails `decode` with `exceptions.InvalidParams`: a 400
`invalid_request_error` for that request, as Anthropic answers a modified token.

The key: the `server_tools_key` setting when given (every process of a fleet must share it);
otherwise the store's secret (`Store.server_secret`, made once, shared by every process of the store:
tools/kit.py); and for a kit built without a store (tests, benchmarks) 32 random bytes generated
once into `<data_dir>/server-tools.key` and read back by every
later start (and every process sharing that directory). It is loaded on first use only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import threading
import zlib
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from batchd import exceptions

VERSION = b"\x01"
NONCE_BYTES = 12
KEY_FILE = "server-tools.key"
_MIN_TOKEN = len(VERSION) + NONCE_BYTES + 16  # the GCM tag alone is 16 bytes


def derive_key(secret: str) -> bytes:
    """The AES-256 key for a configured secret of any length (a passphrase or random hex)."""
    return hashlib.sha256(b"batchd server tools tokens v1\x00" + secret.encode()).digest()


def key_from_file(data_dir: str) -> bytes:
    """The key kept in `data_dir`, generated on first use; safe against processes racing to create it."""
    path = Path(data_dir) / KEY_FILE
    try:
        return derive_key(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_hex(32).encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic, and fails if another process got there first: theirs is kept
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return derive_key(path.read_text().strip())


class Tokens:
    """Encodes and decodes the tokens of one key (given, or loaded on first use by `load_key`)."""

    def __init__(self, key: bytes | None = None, *, load_key: Any = None) -> None:
        if key is None and load_key is None:
            raise ValueError("Tokens needs a key or a way to load one")
        self._key = key
        self._load_key = load_key
        self._aead: AESGCM | None = None
        self._lock = threading.Lock()

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            with self._lock:
                if self._aead is None:
                    key = self._key if self._key is not None else self._load_key()
                    self._aead = AESGCM(key)
        return self._aead

    def encode(self, kind: str, payload: dict[str, Any]) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._cipher().encrypt(nonce, zlib.compress(orjson.dumps(payload)), kind.encode())
        return base64.b64encode(VERSION + nonce + sealed).decode()

    def decode(self, kind: str, token: object, where: str) -> dict[str, Any]:
        """The payload of `token`; raises InvalidParams naming `where` (a field path) if it is not ours."""
        if not isinstance(token, str) or not token:
            raise exceptions.InvalidParams(f"{where}: Field required")
        try:
            raw = base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) < _MIN_TOKEN or raw[:1] != VERSION:
            raise _invalid(where)
        nonce, sealed = raw[1 : 1 + NONCE_BYTES], raw[1 + NONCE_BYTES :]
        try:
            payload = orjson.loads(zlib.decompress(self._cipher().decrypt(nonce, sealed, kind.encode())))
        except (InvalidTag, zlib.error, orjson.JSONDecodeError):
            raise _invalid(where) from None
        if not isinstance(payload, dict):
            raise _invalid(where)
        return payload


def _invalid(where: str) -> exceptions.InvalidParams:
    return exceptions.InvalidParams(
        f"{where}: the value was not produced by this server or was modified; "
        "send the blocks of earlier responses back unchanged"
    )
