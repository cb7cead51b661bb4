"""Turning one request's fate into the `result` JSON of its results line."""

from __future__ import annotations

from typing import Any

import orjson

from batchd import exceptions, models


def succeeded(req: models.ClaimedRequest, message: dict[str, Any]) -> models.Outcome:
    result = b'{"type":"succeeded","message":' + orjson.dumps(message) + b"}"
    return models.Outcome(
        req.batch_id, req.index, req.custom_id, models.ResultType.SUCCEEDED, result, req.key
    )


def errored(req: models.ClaimedRequest, error: exceptions.BatchdError) -> models.Outcome:
    result = orjson.dumps(
        {
            "type": "errored",
            "error": {
                "type": "error",
                "error": {"type": error.error_type, "message": error.message},
                "request_id": None,
                # Not in Anthropic's shape: lets code written as `result.error.message` (as in the
                # SDK's own batch examples) read the message too.
                "message": error.message,
            },
        }
    )
    return models.Outcome(req.batch_id, req.index, req.custom_id, models.ResultType.ERRORED, result, req.key)
