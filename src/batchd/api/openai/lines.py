"""An input file's lines, checked before a batch is created (the spec's §3.4): each a JSON object
`{"custom_id", "method": "POST", "url": <the batch's endpoint>, "body": {"model", …}}`, custom_ids
unique, one model in the whole file, at most MAX_TASKS lines. Pure: no I/O.

Every problem found is listed with its physical, 1-based line number (the first MAX_ERRORS of them);
any problem fails the whole batch. Blank lines are skipped. What only the upstream can judge (a bad
`max_tokens`) is no problem here: that request runs, and its error goes to the error file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import orjson

MAX_TASKS = 50_000  #: requests in one batch (and embedding inputs in one /v1/embeddings batch)
MAX_ERRORS = 1000  #: problems listed in a failed batch's `errors`; the rest are not
MAX_CUSTOM_ID = 512  #: characters of a custom_id (OpenAI's own limit is unpublished; 64 is common)
EMBEDDINGS = "/v1/embeddings"


@dataclasses.dataclass(slots=True)
class Checked:
    """The file's requests when it passed (`errors` empty), else what failed it."""

    custom_ids: list[str] = dataclasses.field(default_factory=list)
    params: list[bytes] = dataclasses.field(default_factory=list)  #: each line's bytes, as stored
    model: str | None = None
    errors: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def error(code: str, message: str, *, line: int | None = None, param: str | None = None) -> dict[str, Any]:
    """One `BatchError`, every key present."""
    return {"code": code, "message": message, "param": param, "line": line}


def check(data: bytes | bytearray, endpoint: str, *, max_tasks: int = MAX_TASKS) -> Checked:
    """The requests of input file `data` for a batch of `endpoint`, or its problems."""
    out = Checked()
    seen: set[str] = set()
    inputs = tasks = 0
    for number, line in _lines(data):
        tasks += 1
        if tasks > max_tasks:
            out.errors[:] = [error("too_many_tasks", f"The input file has more than {max_tasks} requests.")]
            return out
        problem = _check_line(line, number, endpoint, seen, out)
        if problem is not None:
            if len(out.errors) < MAX_ERRORS:
                out.errors.append(problem)
            continue
        if endpoint == EMBEDDINGS:
            inputs += _inputs(orjson.loads(line)["body"])
    if not out.params and not out.errors:
        out.errors.append(error("empty_file", "The input file is empty: it has no requests."))
    elif inputs > max_tasks:
        out.errors[:] = [
            error("too_many_tasks", f"The input file has more than {max_tasks} embedding inputs.")
        ]
    if out.errors:
        out.custom_ids, out.params = [], []
    return out


def _lines(data: bytes | bytearray) -> Iterator[tuple[int, bytes]]:
    """(number, line) for each line that is not blank, stripped: one copy of each line at a time
    (a list of every line would hold a second copy of the whole file)."""
    start, number, size = 0, 0, len(data)
    while start < size:
        end = data.find(b"\n", start)
        end = size if end < 0 else end
        number += 1
        line = bytes(data[start:end]).strip()
        if line:
            yield number, line
        start = end + 1


def _check_line(
    line: bytes, number: int, endpoint: str, seen: set[str], out: Checked
) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return error("invalid_json_line", "This line is not parseable as valid JSON.", line=number)
    if not isinstance(obj, dict):
        return error("invalid_json_line", "This line is not a JSON object.", line=number)
    custom_id = obj.get("custom_id")
    if custom_id is None:
        return _missing("custom_id", number)
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > MAX_CUSTOM_ID:
        return _invalid(
            "custom_id", f"must be a non-empty string of at most {MAX_CUSTOM_ID} characters", number
        )
    method = obj.get("method")
    if method is None:
        return _missing("method", number)
    if method != "POST":
        return _invalid("method", "must be 'POST'", number)
    url = obj.get("url")
    if url is None:
        return _missing("url", number)
    if url != endpoint:
        return error(
            "url_mismatch",
            f"The url '{url}' of this request does not match the batch's endpoint '{endpoint}'.",
            line=number,
            param="url",
        )
    body = obj.get("body")
    if body is None:
        return _missing("body", number)
    if not isinstance(body, dict):
        return _invalid("body", "must be a JSON object", number)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return (
            _missing("body.model", number)
            if model is None
            else _invalid("body.model", "must be a string", number)
        )
    if body.get("stream"):
        return _invalid("body.stream", "must not be true: a batch request is not streamed", number)
    if custom_id in seen:
        return error(
            "duplicate_custom_id",
            f"The custom_id '{custom_id}' for this request is a duplicate of another request. "
            "The custom_id parameter must be unique for each request in a batch.",
            line=number,
            param="custom_id",
        )
    if out.model is None:
        out.model = model
    elif model != out.model:
        return error(
            "mismatched_model",
            f"The model '{model}' for this request does not match the rest of the batch. "
            "Each batch must contain requests for a single model.",
            line=number,
            param="body.model",
        )
    seen.add(custom_id)
    out.custom_ids.append(custom_id)
    out.params.append(line)
    return None


def _missing(param: str, number: int) -> dict[str, Any]:
    return error(
        "missing_required_parameter",
        f"This line is missing the required '{param}'.",
        line=number,
        param=param,
    )


def _invalid(param: str, rule: str, number: int) -> dict[str, Any]:
    return error("invalid_value", f"This line's '{param}' {rule}.", line=number, param=param)


def _inputs(body: dict[str, Any]) -> int:
    """How many embedding inputs a /v1/embeddings body holds: one per list item, else one."""
    given = body.get("input")
    return len(given) if isinstance(given, list) and given and not isinstance(given[0], int) else 1
