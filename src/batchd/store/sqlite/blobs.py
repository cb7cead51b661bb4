"""An uploaded OpenAI file's bytes on SQLite: one file in a directory beside the database
(`<database>.files/<file id>`), its row in `openai_files` the record.

Why not rows, as on PostgreSQL (where every process of a fleet must read every file): one process
owns a SQLite file, and writing a 208 MB upload as 1 MiB blobs cost SQLite 0.39 s into its WAL and
~0.5 s more to checkpoint it into the database (its one writer thread busy all along), where a
plain write and fsync of the same bytes take ~0.25 s (docs/benchmarks.md).

Order, so that a crash leaves no file listed without its bytes: the row is written (unlisted), the
bytes appended, fsynced with the directory, and only then the row completed durably. Deleting
commits the row's deletion first and removes the bytes after; bytes whose row is gone (a crash in
between) are removed by the maintenance sweep (`orphans`). Files uploaded before this module kept
their bytes in `openai_file_chunks`: they are read from there.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path

READ_BYTES = 4 << 20  # bytes one read of a file's content takes
FILE_ID = re.compile(r"^file-[0-9A-Za-z]{1,64}$")  # models.new_openai_file_id's form: never a path


class Blobs:
    def __init__(self, database: str) -> None:
        self.root = Path(database + ".files")

    def path(self, file_id: str) -> Path:
        if not FILE_ID.match(file_id):
            raise ValueError(f"not a file id: {file_id!r}")
        return self.root / file_id

    def exists(self, file_id: str) -> bool:
        return FILE_ID.match(file_id) is not None and self.path(file_id).is_file()

    async def append(self, file_id: str, chunks: Sequence[bytes], *, first: bool) -> None:
        """Writes `chunks` after the bytes stored so far (`first`: the file starts here)."""
        await asyncio.to_thread(self._append, self.path(file_id), chunks, first)

    def _append(self, path: Path, chunks: Sequence[bytes], first: bool) -> None:
        if first:
            self.root.mkdir(mode=0o700, exist_ok=True)
        with path.open("wb" if first else "ab") as fh:
            for chunk in chunks:
                fh.write(chunk)

    async def sync(self, file_id: str) -> None:
        """The file's bytes and its name on disk (before its row says it is complete)."""
        await asyncio.to_thread(self._sync, self.path(file_id))

    def _sync(self, path: Path) -> None:
        if not path.exists():  # an empty upload never wrote a chunk
            self.root.mkdir(mode=0o700, exist_ok=True)
            path.touch()
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        dir_fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    async def read(self, file_id: str) -> AsyncIterator[bytes]:
        fh = await asyncio.to_thread(self.path(file_id).open, "rb")
        try:
            while data := await asyncio.to_thread(fh.read, READ_BYTES):
                yield data
        finally:
            fh.close()

    async def remove(self, file_ids: Iterable[str]) -> None:
        await asyncio.to_thread(self._remove, list(file_ids))

    def _remove(self, file_ids: list[str]) -> None:
        for file_id in file_ids:
            if FILE_ID.match(file_id):
                self.path(file_id).unlink(missing_ok=True)

    def stored(self) -> list[str]:
        """The ids of every file with bytes here (for the sweep of orphans)."""
        try:
            return [p.name for p in self.root.iterdir() if FILE_ID.match(p.name)]
        except FileNotFoundError:
            return []
