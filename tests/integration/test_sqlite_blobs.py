"""SQLite keeps an uploaded OpenAI file's bytes in a directory beside the database (store/sqlite/blobs.py):
written there, read back, removed with the file's row, orphans swept, older files' rows still read."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from batchd.store.sqlite.store import SQLiteStore
from tests.integration.test_store_openai import content, stored, upload


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(str(tmp_path / "batchd.db"))
    await s.open()
    yield s
    await s.aclose()


async def test_the_bytes_live_beside_the_database_not_in_its_rows(store: SQLiteStore, tmp_path: Path) -> None:
    chunks = [b"a" * 1000, b"b" * 1000, b"c" * 10]
    file = await stored(store, upload(1), chunks)
    on_disk = tmp_path / "batchd.db.files" / file.id
    assert on_disk.read_bytes() == b"".join(chunks)
    assert await content(store, file.id) == b"".join(chunks)
    with sqlite3.connect(tmp_path / "batchd.db") as conn:
        assert conn.execute("SELECT count(*) FROM openai_file_chunks").fetchone() == (0,)
    assert await store.delete_openai_file("a", file.id)
    assert not on_disk.exists()


async def test_an_empty_upload_and_a_refused_one(store: SQLiteStore, tmp_path: Path) -> None:
    empty = await stored(store, upload(2), [])
    assert await content(store, empty.id) == b""
    refused = upload(3)
    await store.begin_openai_file(refused)
    await store.put_openai_chunks(refused.id, 0, [b"half"])
    await store.drop_openai_file(refused.id)
    assert not (tmp_path / "batchd.db.files" / refused.id).exists()


async def test_the_sweep_removes_bytes_without_a_row_and_keeps_the_rest(
    store: SQLiteStore, tmp_path: Path
) -> None:
    kept = await stored(store, upload(4), [b"kept"])
    orphan = tmp_path / "batchd.db.files" / "file-orphan0000000000000000"
    orphan.write_bytes(b"left by a crash between a delete and the removal of its bytes")
    (tmp_path / "batchd.db.files" / "notes.txt").write_text("not a file id: left alone")
    await store.expire_openai_files(now=200.0)
    assert not orphan.exists()
    assert (tmp_path / "batchd.db.files" / "notes.txt").exists()
    assert await content(store, kept.id) == b"kept"


async def test_a_file_uploaded_before_the_directory_is_read_from_its_rows(
    store: SQLiteStore, tmp_path: Path
) -> None:
    old = upload(5)._replace(bytes=6)
    await store.begin_openai_file(old)
    with sqlite3.connect(tmp_path / "batchd.db") as conn:  # as the store wrote them before
        conn.executemany(
            "INSERT INTO openai_file_chunks (file_id, n, data) VALUES (?, ?, ?)",
            [(old.id, 0, b"old"), (old.id, 1, b"row")],
        )
    await store.complete_openai_file(old)
    (tmp_path / "batchd.db.files" / old.id).unlink()  # complete's sync made an empty file: none then
    assert await content(store, old.id) == b"oldrow"
