"""The wire format: create-body decoding and response rendering live here only."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from batchd import exceptions, models, params

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_PATH = re.compile(r"\$\.?")


class RequestItem(msgspec.Struct):
    custom_id: str
    params: msgspec.Raw


class CreateBody(msgspec.Struct):
    requests: list[RequestItem]


_decoder = msgspec.json.Decoder(CreateBody)


def decode_create(body: bytes | bytearray, max_requests: int) -> CreateBody:
    """Checks the envelope only; each request's params are validated when it runs."""
    # isspace(), not strip(): strip() would copy the whole body, doubling create's peak memory.
    if not body or body.isspace():
        raise exceptions.InvalidRequest("requests: Field required")
    try:
        parsed = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise exceptions.InvalidRequest(_validation_message(str(exc))) from exc
    except msgspec.DecodeError as exc:
        raise exceptions.InvalidRequest(f"Request body is not valid JSON: {exc}") from exc
    except RecursionError:
        # The decoder skips over each params value, recursing once per level; no valid request
        # comes near the depth where it gives up (params.MAX_DEPTH is far below it). Shallower
        # excess is found per request, when it runs, and errors that request alone.
        raise exceptions.InvalidRequest(f"requests: {params.TOO_DEEP}") from None
    requests = parsed.requests
    if not requests:
        raise exceptions.InvalidRequest("requests: List should have at least 1 item after validation, not 0")
    if len(requests) > max_requests:
        raise exceptions.InvalidRequest(
            f"requests: List should have at most {max_requests} items after validation, not {len(requests)}"
        )
    seen: set[str] = set()
    match = CUSTOM_ID.match
    for i, item in enumerate(requests):
        if not match(item.custom_id):
            raise exceptions.InvalidRequest(
                f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$' "
                f"(got {item.custom_id[:80]!r})"
            )
        if item.custom_id in seen:
            raise exceptions.InvalidRequest(
                f"requests.{i}.custom_id: Duplicate custom_id {item.custom_id!r}; "
                "custom_id must be unique within a batch"
            )
        seen.add(item.custom_id)
        raw = bytes(memoryview(item.params)[:1])
        if raw != b"{":
            raise exceptions.InvalidRequest(f"requests.{i}.params: Input should be a valid dictionary")
    return parsed


def _validation_message(text: str) -> str:
    # msgspec says "Object missing required field `params` - at `$.requests[3]`"
    message, _, where = text.partition(" - at `")
    where = where.rstrip("`")
    path = _PATH.sub("", where).replace("[", ".").replace("]", "")
    field = re.search(r"required field `(\w+)`", message)
    if field:
        return f"{path + '.' if path else ''}{field.group(1)}: Field required"
    return f"{path}: {message}" if path else message


def batch(b: models.Batch, public_url: str, *, strict: bool = False) -> dict[str, Any]:
    """The batch object. `strict`: counts as the real API gives them, every request `processing`
    until the batch ends; otherwise live (the dashboard and `batchd watch` show progress)."""
    c = b.request_counts
    ended = b.processing_status is models.ProcessingStatus.ENDED
    if strict and not ended:
        c = models.RequestCounts(processing=c.total)
    return {
        "id": b.id,
        "type": "message_batch",
        "processing_status": b.processing_status.value,
        "request_counts": {
            "processing": c.processing,
            "succeeded": c.succeeded,
            "errored": c.errored,
            "canceled": c.canceled,
            "expired": c.expired,
        },
        "ended_at": models.rfc3339(b.ended_at),
        "created_at": models.rfc3339(b.created_at),
        "expires_at": models.rfc3339(b.expires_at),
        "archived_at": models.rfc3339(b.archived_at),
        "cancel_initiated_at": models.rfc3339(b.cancel_initiated_at),
        "results_url": f"{public_url}/v1/messages/batches/{b.id}/results" if ended else None,
    }


def page(
    batches: list[models.Batch], has_more: bool, public_url: str, *, strict: bool = False
) -> dict[str, Any]:
    return {
        "data": [batch(b, public_url, strict=strict) for b in batches],
        "has_more": has_more,
        "first_id": batches[0].id if batches else None,
        "last_id": batches[-1].id if batches else None,
    }


def deleted(batch_id: str) -> dict[str, Any]:
    return {"id": batch_id, "type": "message_batch_deleted"}
