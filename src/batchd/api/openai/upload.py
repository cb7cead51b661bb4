"""`POST /v1/files`'s multipart body, streamed into the store: the `file` part's bytes are written in
chunks (store/openai.CHUNK_BYTES) as they arrive, a few per transaction, so a 200 MB upload never
sits whole in memory nor on a temporary disk; the form's other fields (`purpose`, `expires_after[…]`)
are small and kept. The file's row is written first, unlisted until the upload completes
(`complete_openai_file`); an upload refused or abandoned half-way is dropped, and one a crash cut
short is swept an hour later (`expire_openai_files`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from batchd import exceptions
from batchd.store import Store
from batchd.store.openai import CHUNK_BYTES, OpenAIFile

if TYPE_CHECKING:  # a typing-only name of the parser's
    from python_multipart.multipart import MultipartCallbacks

FLUSH_CHUNKS = 8  # chunks written per transaction while an upload streams in
MAX_FIELD_BYTES = 1024  # bytes of a form field (purpose, expires_after[…])
MAX_FIELDS = 8
MAX_FILENAME = 255  # bytes of a file's name, UTF-8


@dataclasses.dataclass(slots=True)
class Received:
    """What the form held: its fields, and the file part's name and size (its bytes are stored)."""

    fields: dict[str, str]
    filename: str
    size: int


@dataclasses.dataclass(slots=True)
class _Form:
    fields: dict[str, str] = dataclasses.field(default_factory=dict)
    filename: str | None = None  # the file part's, once its headers are read
    in_file: bool = False
    name: bytes = b""
    value: bytes = b""
    disposition: bytes = b""
    field: bytearray = dataclasses.field(default_factory=bytearray)
    pending: bytearray = dataclasses.field(default_factory=bytearray)  # file bytes not stored yet
    size: int = 0
    files: int = 0

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.part_begin,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
        }

    def part_begin(self) -> None:
        self.disposition, self.in_file = b"", False
        self.field.clear()

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def header_end(self) -> None:
        if self.name.lower() == b"content-disposition":
            self.disposition = self.value
        self.name = self.value = b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == "file":
            self.files += 1
            if self.files > 1:
                raise exceptions.InvalidRequest("Only one file part may be uploaded.", param="file")
            self.in_file = True
            self.filename = options.get(b"filename", b"upload").decode("utf-8", "replace")
        elif len(self.fields) >= MAX_FIELDS:
            raise exceptions.InvalidRequest("The form has too many fields.")
        else:
            self.fields[name] = ""
            self.disposition = name.encode()

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.pending += memoryview(data)[start:end]  # one copy, not two (a slice, then its bytes)
            self.size += end - start
            return
        self.field += data[start:end]
        if len(self.field) > MAX_FIELD_BYTES:
            raise exceptions.InvalidRequest("A form field is longer than 1 KB.")

    def part_end(self) -> None:
        if not self.in_file:
            self.fields[self.disposition.decode()] = self.field.decode("utf-8", "replace")
        self.in_file = False


async def receive(request: Request, store: Store, file: OpenAIFile, *, limit: int) -> Received:
    """Reads the upload into the store as file `file` (an unlisted row until the caller completes
    it); raises InvalidRequest, with nothing left stored, for a bad form or a file over `limit`."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise exceptions.UnsupportedMediaType("Content-Type must be multipart/form-data (with a boundary)")
    form = _Form()
    parser = MultipartParser(boundary, form.callbacks())
    await store.begin_openai_file(file)
    writer = _Writer(store, file.id)
    try:
        async for data in request.stream():
            parser.write(data)
            if form.size > limit:
                raise exceptions.InvalidRequest(
                    f"The file is larger than the limit of {limit} bytes for the Batch API.", param="file"
                )
            if len(form.pending) >= FLUSH_CHUNKS * CHUNK_BYTES:
                await writer.flush(form.pending, whole=False)
        parser.finalize()
        if form.filename is None:
            raise exceptions.InvalidRequest("A file part named `file` is required.", param="file")
        await writer.flush(form.pending, whole=True)
        await writer.done()
    except FormParserError as exc:
        await writer.abandon()
        raise exceptions.InvalidRequest(f"The body is not a valid multipart form: {exc}") from None
    except BaseException:
        await writer.abandon()
        raise
    return Received(form.fields, _filename(form.filename), form.size)


class _Writer:
    """Stores an upload's chunks while the next ones are read and parsed: one write in flight at
    a time, so the body's parsing and the store's writing overlap and memory stays bounded."""

    def __init__(self, store: Store, file_id: str) -> None:
        self.store = store
        self.file_id = file_id
        self.stored = 0  # chunks handed to the store
        self.writing: asyncio.Task[None] | None = None

    async def flush(self, pending: bytearray, *, whole: bool) -> None:
        """Hands the whole chunks of `pending` (every byte if `whole`) to the store, once the write
        before has ended, and drops them from `pending`."""
        n = len(pending) if whole else len(pending) - len(pending) % CHUNK_BYTES
        with memoryview(pending) as view:  # one copy per chunk (a bytearray's slice is a copy too)
            chunks = [bytes(view[i : min(i + CHUNK_BYTES, n)]) for i in range(0, n, CHUNK_BYTES)]
        del pending[:n]
        await self.done()
        if chunks:
            put = self.store.put_openai_chunks(self.file_id, self.stored, chunks)
            self.writing = asyncio.create_task(put, name=f"upload {self.file_id}")
            self.stored += len(chunks)

    async def done(self) -> None:
        """Until the write in flight has ended; raises what it raised."""
        writing, self.writing = self.writing, None
        if writing is not None:
            await writing

    async def abandon(self) -> None:
        """The upload failed: the write in flight ends (its error is the upload's, not this one),
        then the file is dropped."""
        with contextlib.suppress(Exception):
            await self.done()
        await self.store.drop_openai_file(self.file_id)


def _filename(raw: str) -> str:
    """The last path segment of the part's filename, without control characters."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = "".join(c for c in name if ord(c) >= 32 and ord(c) != 127) or "upload"
    while len(name.encode()) > MAX_FILENAME:
        name = name[:-1]
    return name
