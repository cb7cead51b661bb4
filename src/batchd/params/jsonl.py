"""Reading a requests JSONL file: every problem with its line number, then splitting.

`batchd submit` (cli/client.py) and the dashboard's upload (dashboard/upload.py) share it, so a file
gets the same verdict and the same messages wherever it is sent. Nothing is sent or stored until the
whole file is known to be good, and the file is split so that no batch passes the server's per-batch
limits (number of requests and body bytes).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ENVELOPE_BYTES = 64  # `{"requests":[` … `]}` and slack
MAX_REPORTED = 20  # problems listed before "and N more"
DEFAULT_MAX_REQUESTS = 100_000  # Anthropic's per-batch limits, used when the server does not say
DEFAULT_MAX_BATCH_BYTES = 256 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Problem:
    line: int
    message: str


class BadInput(Exception):
    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s)")

    def lines(self) -> list[str]:
        shown = [f"{self.path}:{p.line}: {p.message}" for p in self.problems[:MAX_REPORTED]]
        if len(self.problems) > MAX_REPORTED:
            shown.append(f"… and {len(self.problems) - MAX_REPORTED} more problems")
        return shown


@dataclasses.dataclass
class Requests:
    items: list[dict[str, Any]]
    sizes: list[int]  #: an upper bound of each request's size in any JSON encoding


def encoded_size(request: dict[str, Any]) -> int:
    # ASCII-escaped with spaced separators is the largest form any client sends.
    return len(json.dumps(request)) + 1


def read_requests(path: str, max_batch_bytes: int) -> Requests:
    """Parses and checks every line of the file at `path`; raises BadInput listing each problem
    with its line number."""
    with Path(path).open("rb") as fh:
        return check_lines(fh, max_batch_bytes, name=path)


def check_lines(lines: Iterable[bytes], max_batch_bytes: int, *, name: str) -> Requests:
    """Parses and checks every line; raises BadInput (named `name`) listing each problem with its
    line number."""
    problems: list[Problem] = []
    items: list[dict[str, Any]] = []
    sizes: list[int] = []
    seen: dict[str, int] = {}
    limit = max_batch_bytes - ENVELOPE_BYTES
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            problems.append(Problem(number, f"not valid JSON ({exc})"))
            continue
        problem = _check(value, seen, number)
        if problem:
            problems.append(Problem(number, problem))
            continue
        size = encoded_size(value)
        if size > limit:
            problems.append(
                Problem(number, f"request is {size} bytes, more than a batch may hold ({limit} bytes)")
            )
            continue
        seen[value["custom_id"]] = number
        items.append(value)
        sizes.append(size)
    if not items and not problems:
        problems.append(Problem(0, "no requests: the file is empty"))
    if problems:
        raise BadInput(name, problems)
    return Requests(items, sizes)


def _check(value: object, seen: dict[str, int], number: int) -> str | None:
    if not isinstance(value, dict):
        return 'each line must be a JSON object {"custom_id": …, "params": {…}}'
    missing = [f for f in ("custom_id", "params") if f not in value]
    if missing:
        return "missing field" + ("s " if len(missing) > 1 else " ") + " and ".join(missing)
    extra = sorted(set(value) - {"custom_id", "params"})
    if extra:
        return f"unexpected field {extra[0]!r} (only custom_id and params are allowed)"
    custom_id = value["custom_id"]
    if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
        return f"custom_id must be 1-64 letters, digits, '-' or '_', got {custom_id!r}"
    if custom_id in seen:
        return f"duplicate custom_id {custom_id!r} (first on line {seen[custom_id]})"
    if not isinstance(value["params"], dict):
        return "params must be a JSON object"
    return None


def split(requests: Requests, max_requests: int, max_batch_bytes: int) -> Iterator[list[dict[str, Any]]]:
    """Consecutive chunks within both limits, in file order."""
    budget = max_batch_bytes - ENVELOPE_BYTES
    chunk: list[dict[str, Any]] = []
    used = 0
    for item, size in zip(requests.items, requests.sizes, strict=True):
        if chunk and (len(chunk) >= max_requests or used + size > budget):
            yield chunk
            chunk, used = [], 0
        chunk.append(item)
        used += size
    if chunk:
        yield chunk
