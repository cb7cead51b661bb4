"""Small pure helpers that turn store values into what the templates show.

A result line is Anthropic's `{"custom_id", "result"}`, or, in an OpenAI batch, an OpenAI output
line `{"id", "custom_id", "response", "error"}` (api/openai/outputs.py); `entry` is given the
batch's `OpenAIWire` for the latter and shows every line as the output or error file has it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from batchd.api.openai import outputs
from batchd.store import layout
from batchd.store.base import RequestEntry

SUMMARY_CHARS = 160


def when(value: str | None) -> str:
    """An RFC 3339 timestamp as '2026-01-02 15:04:05 UTC'; '—' for None."""
    if not value:
        return "—"
    dt = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return dt.strftime("%Y-%m-%d %H:%M:%S UTC")


def pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _error_of(result: dict[str, Any]) -> dict[str, Any]:
    """The innermost {type, message} of an errored result (Anthropic nests it twice)."""
    error: dict[str, Any] = result.get("error") or {}
    nested = error.get("error")
    inner: dict[str, Any] = nested if isinstance(nested, dict) else error
    return {"type": inner.get("type", "error"), "message": inner.get("message", "")}


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text[:SUMMARY_CHARS] + ("…" if len(text) > SUMMARY_CHARS else "")


def summary(result: dict[str, Any] | None, state: str) -> str:
    if result is None:
        return state
    kind = result.get("type")
    if kind == "errored":
        err = _error_of(result)
        return f"{err['type']}: {err['message']}"[:SUMMARY_CHARS]
    if kind == "succeeded":
        message = result.get("message") or {}
        for block in message.get("content") or []:
            if block.get("type") == "text" and block.get("text"):
                return _clip(block["text"])
        return f"stop_reason: {message.get('stop_reason')}"
    return str(kind)


class OpenAIWire(NamedTuple):
    """What rendering an OpenAI batch's stored line as its file line takes (outputs.render)."""

    batch_id: str
    seq: int  #: the engine batch's (request keys derive from it)


def entry(e: RequestEntry, wire: OpenAIWire | None = None) -> dict[str, Any]:
    state = e.state.name.lower()
    result_type = None if e.result_type is None else e.result_type.value
    if wire is not None:
        return _openai_entry(e, wire, state, result_type)
    result = orjson.loads(e.line)["result"] if e.line else None
    return {
        "index": e.index,
        "custom_id": e.custom_id,
        "state": state,
        "result_type": result_type,
        "result": result,
        "error": _error_of(result) if result and result.get("type") == "errored" else None,
        "summary": summary(result, state),
        "openai": None,
    }


def _openai_entry(e: RequestEntry, wire: OpenAIWire, state: str, result_type: str | None) -> dict[str, Any]:
    line: dict[str, Any] | None = None
    if e.line is not None and result_type is not None:
        key = layout.key(wire.seq, e.index)
        line = orjson.loads(outputs.render(wire.batch_id, key, result_type, e.line))
    error = None if line is None else openai_error(line)
    return {
        "index": e.index,
        "custom_id": e.custom_id,
        "state": state,
        "result_type": result_type,
        "result": line,
        "error": error,
        "summary": state if line is None else openai_summary(line),
        "openai": None if line is None or error is not None else openai_reply(line),
    }


def openai_error(line: dict[str, Any]) -> dict[str, str] | None:
    """The {type, message} of an OpenAI output line that failed (None for a 2xx reply): its
    `error`, or the error body of a non-2xx `response`."""
    response = line.get("response") or {}
    code = response.get("status_code")
    if line.get("error") is None and isinstance(code, int) and 200 <= code < 300:
        return None
    error = line.get("error")
    if isinstance(error, dict):
        return {"type": str(error.get("code") or "error"), "message": str(error.get("message") or "")}
    body = response.get("body") or {}
    inner = body.get("error") if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        return {"type": f"HTTP {code}", "message": ""}
    kind = inner.get("type") or inner.get("code") or f"HTTP {code}"
    return {"type": str(kind), "message": str(inner.get("message") or "")}


def openai_reply(line: dict[str, Any]) -> dict[str, Any]:
    """What the page shows of a 2xx OpenAI reply: model, finish_reason, tokens, and its text (chat,
    completions) or the size of its embeddings."""
    body = (line.get("response") or {}).get("body") or {}
    usage = body.get("usage") or {}
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message")
    text = message.get("content") if isinstance(message, dict) else choice.get("text")
    embeddings = [d.get("embedding") for d in body.get("data") or [] if isinstance(d, dict)]
    return {
        "model": body.get("model"),
        "finish_reason": choice.get("finish_reason"),
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "text": text if isinstance(text, str) else None,
        "embeddings": len(embeddings),
        "dims": len(embeddings[0]) if embeddings and isinstance(embeddings[0], list) else None,
    }


def openai_summary(line: dict[str, Any]) -> str:
    """One line for an OpenAI output or error line: the error, the assistant's (or completion's)
    text, or 'embedding, N dims'."""
    error = openai_error(line)
    if error is not None:
        return f"{error['type']}: {error['message']}"[:SUMMARY_CHARS]
    reply = openai_reply(line)
    if reply["text"]:
        return _clip(reply["text"])
    if reply["embeddings"]:
        dims = "base64" if reply["dims"] is None else f"{reply['dims']} dims"
        many = f"{reply['embeddings']} embeddings" if reply["embeddings"] > 1 else "embedding"
        return f"{many}, {dims}"
    return f"finish_reason: {reply['finish_reason']}"


def number(value: float | None, digits: int = 0) -> str:
    """A figure with thousands separators ('12,345'; '—' for None)."""
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def duration(seconds: float | None) -> str:
    """'2 h 05 min', '4 min 09 s', '12 s', '2.5 s' ('—' for None)."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def when_epoch(value: float | None) -> str:
    """A time.time() value as '2026-01-02 15:04:05 UTC'; '—' for None."""
    if value is None:
        return "—"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
