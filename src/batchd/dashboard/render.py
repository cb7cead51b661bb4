"""Small pure helpers that turn store values into what the templates show."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

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
                text = " ".join(block["text"].split())
                return text[:SUMMARY_CHARS] + ("…" if len(text) > SUMMARY_CHARS else "")
        return f"stop_reason: {message.get('stop_reason')}"
    return str(kind)


def entry(e: RequestEntry) -> dict[str, Any]:
    result = orjson.loads(e.line)["result"] if e.line else None
    state = e.state.name.lower()
    return {
        "index": e.index,
        "custom_id": e.custom_id,
        "state": state,
        "result_type": None if e.result_type is None else e.result_type.value,
        "result": result,
        "error": _error_of(result) if result and result.get("type") == "errored" else None,
        "summary": summary(result, state),
    }


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
