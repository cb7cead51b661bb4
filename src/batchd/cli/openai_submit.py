"""`batchd submit` for an OpenAI Batch API file: upload, create, wait, download (the second wire).

A file whose lines are `{"custom_id", "method", "url", "body"}` (OpenAI's batch input) goes through
`/v1/files` and `/v1/batches` rather than Anthropic's Message Batches API. It is checked first as an
Anthropic file is (every problem with its line number, nothing sent until the whole file is good),
then split so that no part passes OpenAI's per-batch limits (50,000 lines, 200 MB); each part keeps
its lines byte for byte. With `--wait`, the output and error files of every batch are written one
after the other: one line per input line, joined on `custom_id` as OpenAI's own are.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import IO, TYPE_CHECKING, Any, cast

import httpx
import orjson

from batchd.params import jsonl

if TYPE_CHECKING:
    from anthropic.types.messages import MessageBatch

MAX_LINES = 50_000  # OpenAI's per-batch limits (the spec's §4)
MAX_BYTES = 200 * 1024 * 1024
ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
TERMINAL = ("completed", "failed", "expired", "cancelled")
TIMEOUT = httpx.Timeout(600.0, connect=5.0)


class WireError(Exception):
    """The server refused a call: its status and the message of its error envelope."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def is_openai_file(path: str) -> bool:
    """Whether the file's first line is an OpenAI batch input line rather than an Anthropic one."""
    with Path(path).open("rb") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return False
            return isinstance(line, dict) and "params" not in line and ("body" in line or "url" in line)
    return False


@dataclasses.dataclass
class InputFile:
    endpoint: str
    parts: list[list[bytes]]  #: the lines of each part, newline-terminated, byte for byte

    @property
    def lines(self) -> int:
        return sum(len(p) for p in self.parts)


def read_input(path: str, max_lines: int = MAX_LINES, max_bytes: int = MAX_BYTES) -> InputFile:
    """Checks every line (raises jsonl.BadInput listing each problem) and splits the file."""
    problems: list[jsonl.Problem] = []
    seen: dict[str, int] = {}
    endpoint: str | None = None
    lines: list[bytes] = []
    with Path(path).open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            why, url = _check(raw, seen, number)
            if why is None and endpoint is None:
                endpoint = url
            elif why is None and url != endpoint:
                why = f"url {url!r} differs from the first line's {endpoint!r}: one endpoint per file"
            if why is not None:
                problems.append(jsonl.Problem(number, why))
            lines.append(raw if raw.endswith(b"\n") else raw + b"\n")
    if not lines:
        problems.append(jsonl.Problem(1, "the file has no requests"))
    if problems:
        raise jsonl.BadInput(path, problems)
    assert endpoint is not None
    return InputFile(endpoint, list(_split(lines, max_lines, max_bytes)))


def _check(raw: bytes, seen: dict[str, int], number: int) -> tuple[str | None, str]:
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return f"not valid JSON: {exc}", ""
    if not isinstance(line, dict):
        return "a line must be a JSON object with custom_id, method, url and body", ""
    custom_id, url = line.get("custom_id"), line.get("url")
    if not isinstance(custom_id, str) or not custom_id:
        return "custom_id must be a non-empty string", ""
    if custom_id in seen:
        return f"custom_id {custom_id!r} repeats line {seen[custom_id]}", ""
    seen[custom_id] = number
    if line.get("method") != "POST":
        return 'method must be "POST"', ""
    if url not in ENDPOINTS:
        return f"url must be one of {', '.join(ENDPOINTS)}", ""
    body = line.get("body")
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return "body must be an object with a model", ""
    return None, str(url)


def _split(lines: list[bytes], max_lines: int, max_bytes: int) -> Iterator[list[bytes]]:
    part: list[bytes] = []
    size = 0
    for line in lines:
        if part and (len(part) >= max_lines or size + len(line) > max_bytes):
            yield part
            part, size = [], 0
        part.append(line)
        size += len(line)
    if part:
        yield part


class Wire:
    """The OpenAI Files and Batches calls `batchd submit` makes, over httpx."""

    def __init__(self, base_url: str, api_key: str | None) -> None:
        root = base_url.rstrip("/").removesuffix("/v1")
        headers = {"Authorization": f"Bearer {api_key or 'batchd-no-key'}"}
        self.http = httpx.Client(base_url=root + "/v1", headers=headers, timeout=TIMEOUT)

    def close(self) -> None:
        self.http.close()

    def upload(self, name: str, lines: list[bytes]) -> dict[str, Any]:
        content = io.BytesIO(b"".join(lines))
        files = {"file": (name, content, "application/jsonl")}
        return self._json(self.http.post("/files", files=files, data={"purpose": "batch"}))

    def create(self, file_id: str, endpoint: str) -> dict[str, Any]:
        body = {"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h"}
        return self._json(self.http.post("/batches", json=body))

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        return self._json(self.http.get(f"/batches/{batch_id}"))

    def download(self, file_id: str, fh: IO[bytes]) -> None:
        with self.http.stream("GET", f"/files/{file_id}/content") as response:
            if response.status_code != 200:
                response.read()
                self._json(response)
            for chunk in response.iter_bytes():
                fh.write(chunk)

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            error = body.get("error") if isinstance(body, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            raise WireError(response.status_code, str(message or response.text[:200]))
        if not isinstance(body, dict):
            raise WireError(response.status_code, "the server's answer is not a JSON object")
        return body


def as_progress(batch: dict[str, Any]) -> MessageBatch:
    """An OpenAI batch in the shape the live progress display reads (cli/progress.py)."""
    counts = batch.get("request_counts") or {}
    total, completed, failed = (int(counts.get(k) or 0) for k in ("total", "completed", "failed"))
    ended = batch.get("status") in TERMINAL
    request_counts = SimpleNamespace(
        processing=0 if ended else max(total - completed - failed, 0),
        succeeded=completed,
        errored=failed,
        canceled=0,
        expired=0,
    )
    view = SimpleNamespace(
        id=batch["id"], processing_status="ended" if ended else "in_progress", request_counts=request_counts
    )
    return cast("MessageBatch", view)


def submit(
    wire: Wire, path: str, echo: Callable[[str], None], *, max_lines: int = MAX_LINES
) -> list[dict[str, Any]]:
    """Uploads each part of the file and creates its batch; returns the batches as created."""
    source = read_input(path, max_lines=max_lines)
    name = Path(path).name
    created = []
    for i, part in enumerate(source.parts):
        upload = wire.upload(name if len(source.parts) == 1 else f"{Path(name).stem}-{i + 1}.jsonl", part)
        batch = wire.create(upload["id"], source.endpoint)
        created.append(batch)
        echo(f"created {batch['id']} ({len(part)} requests, {batch['status']})")
    if len(created) > 1:
        echo(f"{source.lines} requests split into {len(created)} batches")
    return created


def write_results(wire: Wire, batches: list[dict[str, Any]], fh: IO[bytes]) -> None:
    """Every batch's output file, then its error file: one line per input line that ran or ended."""
    for batch in batches:
        for key in ("output_file_id", "error_file_id"):
            if batch.get(key):
                wire.download(batch[key], fh)
