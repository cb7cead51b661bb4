"""Turning one request's fate into the `result` JSON of its results line.

`settle` is the one place that decides what a request's end means: a Message succeeded; an
invalid request or a backend's final error is the request's own error; anything else is a fault
of batchd's, logged with its traceback and recorded as an internal error.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from batchd import exceptions, models
from batchd.engine import openai_lines

logger = logging.getLogger("batchd.engine")


def settle(req: models.ClaimedRequest, fate: dict[str, Any] | Exception) -> models.Outcome:
    """The outcome of `req` from the Message it got or the exception it ended with."""
    if models.is_openai_batch(req.batch_id):
        return openai_lines.settle(req, fate)
    if isinstance(fate, dict):
        return succeeded(req, fate)
    if isinstance(fate, exceptions.InvalidParams | exceptions.BackendError):
        return errored(req, fate)
    logger.error("request %s/%s failed unexpectedly", req.batch_id, req.custom_id, exc_info=fate)
    return errored(req, exceptions.BatchdError(f"Internal error: {fate}"))


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
