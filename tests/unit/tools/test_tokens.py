"""batchd's own encrypted_content / encrypted_index: round trip, and every way a token is refused."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest

from batchd import exceptions
from batchd.tools import tokens
from batchd.tools.tokens import Tokens


def test_round_trip_and_opacity() -> None:
    t = Tokens(tokens.derive_key("secret"))
    token = t.encode("content", {"url": "https://a.example", "text": "héllo wörld " * 20})
    assert "wörld" not in token and "a.example" not in token and "aGVsbG8" not in token
    assert t.decode("content", token, "x") == {"url": "https://a.example", "text": "héllo wörld " * 20}
    assert t.encode("content", {"a": 1}) != t.encode("content", {"a": 1})  # a fresh nonce each time


@pytest.mark.parametrize(
    "mangle",
    [
        lambda tok: tok[:-2] + ("AA" if not tok.endswith("AA") else "BB"),  # altered
        lambda tok: tok[:20],  # truncated
        lambda tok: "not base64 !",
        lambda tok: base64.b64encode(b"\x02" + base64.b64decode(tok)[1:]).decode(),  # another version
    ],
)
def test_altered_tokens_are_refused(mangle: object) -> None:
    t = Tokens(tokens.derive_key("secret"))
    token = t.encode("content", {"url": "u"})
    with pytest.raises(
        exceptions.InvalidParams, match=r"^messages\.0: the value was not produced by this server"
    ):
        t.decode("content", mangle(token), "messages.0")  # type: ignore[operator]


def test_missing_token_kind_and_key_matter() -> None:
    t = Tokens(tokens.derive_key("secret"))
    token = t.encode("content", {"url": "u"})
    with pytest.raises(exceptions.InvalidParams, match="Field required"):
        t.decode("content", None, "where")
    with pytest.raises(exceptions.InvalidParams):
        t.decode("index", token, "where")  # a content token never passes for an index
    with pytest.raises(exceptions.InvalidParams):
        Tokens(tokens.derive_key("other")).decode("content", token, "where")


def test_the_key_file_is_made_once_and_shared(tmp_path: Path) -> None:
    keys: list[bytes] = []

    def load() -> None:
        keys.append(tokens.key_from_file(str(tmp_path / "data")))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(set(keys)) == 1
    path = tmp_path / "data" / tokens.KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == [tokens.KEY_FILE]  # no temporary file left
    # A later start reads the same key: tokens made before it still decode.
    before = Tokens(load_key=lambda: keys[0]).encode("content", {"n": 1})
    after = Tokens(load_key=lambda: tokens.key_from_file(str(tmp_path / "data")))
    assert after.decode("content", before, "x") == {"n": 1}
