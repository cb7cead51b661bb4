"""The OpenAPI 3.1 description of the OpenAI wire's /v1/batches and realtime endpoints
(docs/openai.md), merged into GET /openapi.json by app.py. Its /v1/files is described with
Anthropic's, on the same paths. The realtime bodies are described loosely (the fields every
backend needs; the rest goes to the route's backend as it is)."""

from __future__ import annotations

import functools
from typing import Any

from batchd.api.openai import batches

_NULL = {"type": "null"}
_INT_NULL = {"anyOf": [{"type": "integer"}, _NULL]}
_STR_NULL = {"anyOf": [{"type": "string"}, _NULL]}
_ID = {"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string"}}
_ERROR = {"$ref": "#/components/responses/OpenAIError"}
_ERRORS = {str(code): _ERROR for code in (400, 401, 404, 500)}
_STATUSES = [
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
]
_STAMPS = (
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _op(op_id: str, summary: str, ok: dict[str, Any], **extra: Any) -> dict[str, Any]:
    success = {"description": "Success", "content": {"application/json": {"schema": ok}}}
    return {"operationId": op_id, "summary": summary, "responses": {"200": success, **_ERRORS}, **extra}


@functools.cache
def schemas() -> dict[str, Any]:
    """The components this wire adds (`OpenAIError` is in the main document)."""
    counts = {
        "type": "object",
        "required": ["total", "completed", "failed"],
        "properties": {name: {"type": "integer", "minimum": 0} for name in ("total", "completed", "failed")},
    }
    error = {
        "type": "object",
        "properties": {"code": _STR_NULL, "message": _STR_NULL, "param": _STR_NULL, "line": _INT_NULL},
    }
    batch = {
        "type": "object",
        "required": [
            "id",
            "object",
            "endpoint",
            "input_file_id",
            "completion_window",
            "status",
            "created_at",
        ],
        "properties": {
            "id": {"type": "string", "examples": ["batch_69c3c347282c81908ede48ecc95bf201"]},
            "object": {"const": "batch"},
            "endpoint": {"type": "string"},
            "input_file_id": {"type": "string"},
            "completion_window": {"type": "string"},
            "status": {"enum": _STATUSES},
            "created_at": {"type": "integer"},
            "expires_at": _INT_NULL,
            **{name: _INT_NULL for name in _STAMPS},
            "output_file_id": _STR_NULL,
            "error_file_id": _STR_NULL,
            "errors": {
                "anyOf": [
                    {
                        "type": "object",
                        "required": ["object", "data"],
                        "properties": {
                            "object": {"const": "list"},
                            "data": {"type": "array", "items": error},
                        },
                    },
                    _NULL,
                ]
            },
            "request_counts": counts,
            "usage": {"anyOf": [{"type": "object"}, _NULL]},
            "model": _STR_NULL,
            "metadata": {"anyOf": [{"type": "object", "additionalProperties": {"type": "string"}}, _NULL]},
        },
    }
    create = {
        "type": "object",
        "required": ["input_file_id", "endpoint", "completion_window"],
        "properties": {
            "input_file_id": {"type": "string"},
            "endpoint": {"enum": list(batches.ENDPOINTS)},
            "completion_window": {"const": batches.WINDOW},
            "metadata": {
                "anyOf": [
                    {
                        "type": "object",
                        "maxProperties": batches.MAX_METADATA,
                        "additionalProperties": {"type": "string", "maxLength": batches.MAX_VALUE},
                        "propertyNames": {"maxLength": batches.MAX_KEY},
                    },
                    _NULL,
                ]
            },
            "output_expires_after": {
                "type": "object",
                "required": ["anchor", "seconds"],
                "properties": {
                    "anchor": {"const": "created_at"},
                    "seconds": {
                        "type": "integer",
                        "minimum": batches.MIN_EXPIRY,
                        "maximum": batches.MAX_EXPIRY,
                    },
                },
            },
        },
    }
    page = {
        "type": "object",
        "required": ["object", "data", "has_more"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": _ref("Batch")},
            "first_id": _STR_NULL,
            "last_id": _STR_NULL,
            "has_more": {"type": "boolean"},
        },
    }
    return {"Batch": batch, "CreateBatchRequest": create, "BatchList": page}


@functools.cache
def paths() -> dict[str, Any]:
    return {
        "/v1/batches": {
            "post": _op(
                "createBatch",
                "Create an OpenAI batch from an uploaded input file (checked at once)",
                _ref("Batch"),
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CreateBatchRequest")}},
                },
            ),
            "get": _op(
                "listBatches",
                "List OpenAI batches, newest first",
                _ref("BatchList"),
                parameters=[
                    {"name": "after", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                    },
                ],
            ),
        },
        "/v1/batches/{batch_id}": {
            "get": _op("retrieveBatch", "Retrieve an OpenAI batch", _ref("Batch"), parameters=[_ID]),
        },
        "/v1/batches/{batch_id}/cancel": {
            "post": {
                **_op("cancelBatch", "Cancel an OpenAI batch", _ref("Batch"), parameters=[_ID]),
                "responses": {
                    "200": {
                        "description": "Success",
                        "content": {"application/json": {"schema": _ref("Batch")}},
                    },
                    "409": _ERROR,
                    **_ERRORS,
                },
            }
        },
    }


def _realtime(op_id: str, summary: str, required: dict[str, Any], streams: bool) -> dict[str, Any]:
    properties = {"model": {"type": "string", "minLength": 1}, **required}
    if streams:
        properties["stream"] = {"type": "boolean"}
    body = {"type": "object", "required": ["model", *required], "properties": properties}
    content: dict[str, Any] = {"application/json": {"schema": {"type": "object", "required": ["object"]}}}
    if streams:
        content["text/event-stream"] = {"schema": {"type": "string"}}
    codes = (400, 401, 404, 413, 429, 500, 502, 503, 504)
    return {
        "post": {
            "operationId": op_id,
            "summary": summary,
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {"200": {"description": "Success", "content": content}}
            | {str(code): _ERROR for code in codes},
        }
    }


def realtime_paths() -> dict[str, Any]:
    """The realtime endpoints: one call each through the routes (api/openai/realtime.py)."""
    text = {"type": "string"}
    message = {"type": "object", "required": ["role"], "properties": {"role": text}}
    tokens = {"type": "array", "items": {"type": "integer"}}
    texts = {"anyOf": [text, {"type": "array", "items": text}, tokens, {"type": "array", "items": tokens}]}
    return {
        "/v1/chat/completions": _realtime(
            "createChatCompletion",
            "A chat completion through the model's route, admitted before batch work",
            {"messages": {"type": "array", "minItems": 1, "items": message}},
            streams=True,
        ),
        "/v1/completions": _realtime(
            "createCompletion",
            "A text completion through the model's route, admitted before batch work",
            {"prompt": texts},
            streams=True,
        ),
        "/v1/embeddings": _realtime(
            "createEmbedding",
            "Embeddings through the model's route, admitted before batch work",
            {"input": texts},
            streams=False,
        ),
    }


def responses() -> dict[str, Any]:
    return {
        "OpenAIError": {
            "description": "Error, in OpenAI's envelope",
            "content": {"application/json": {"schema": _ref("OpenAIError")}},
        }
    }
