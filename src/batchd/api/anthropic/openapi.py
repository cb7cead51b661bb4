"""The OpenAPI 3.1 description of the batches API (and the Messages, token-counting and models
routes beside it), served at GET /openapi.json."""

from __future__ import annotations

import functools
from typing import Any

from batchd import __version__

_TS = {"type": "string", "format": "date-time"}
_TS_NULL = {"anyOf": [_TS, {"type": "null"}]}
_ID = {"name": "message_batch_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"description": "Success", "content": {media: {"schema": schema}}}


# The events of a streamed Message (`stream: true`), in Anthropic's names.
_EVENTS = (
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
)
_MESSAGES = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["role", "content"],
        "properties": {
            "role": {"enum": ["user", "assistant"]},
            "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
        },
    },
}
_ERRORS = {str(code): {"$ref": "#/components/responses/Error"} for code in (400, 401, 404, 413, 500)}


def _op(op_id: str, summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"operationId": op_id, "summary": summary, "responses": {**responses, **_ERRORS}, **extra}


@functools.cache
def document() -> dict[str, Any]:
    schemas = {
        "MessageBatch": {
            "type": "object",
            "required": ["id", "type", "processing_status", "request_counts", "created_at", "expires_at"],
            "properties": {
                "id": {"type": "string", "examples": ["msgbatch_013Zva2CMHLNnXjNJJKqJ2EF"]},
                "type": {"const": "message_batch"},
                "processing_status": {"enum": ["in_progress", "canceling", "ended"]},
                "request_counts": _ref("RequestCounts"),
                "created_at": _TS,
                "expires_at": _TS,
                "ended_at": _TS_NULL,
                "cancel_initiated_at": _TS_NULL,
                "archived_at": _TS_NULL,
                "results_url": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
        },
        "RequestCounts": {
            "type": "object",
            "required": ["processing", "succeeded", "errored", "canceled", "expired"],
            "properties": {
                k: {"type": "integer", "minimum": 0}
                for k in ("processing", "succeeded", "errored", "canceled", "expired")
            },
        },
        "CreateRequest": {
            "type": "object",
            "required": ["requests"],
            "properties": {
                "requests": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 100000,
                    "items": {
                        "type": "object",
                        "required": ["custom_id", "params"],
                        "properties": {
                            "custom_id": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
                            "params": {
                                "type": "object",
                                "description": "Messages API create params, validated when the request runs; "
                                "objects and arrays nested at most 128 levels deep",
                            },
                        },
                    },
                }
            },
        },
        "ListPage": {
            "type": "object",
            "required": ["data", "has_more", "first_id", "last_id"],
            "properties": {
                "data": {"type": "array", "items": _ref("MessageBatch")},
                "has_more": {"type": "boolean"},
                "first_id": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "last_id": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
        },
        "DeletedMessageBatch": {
            "type": "object",
            "required": ["id", "type"],
            "properties": {"id": {"type": "string"}, "type": {"const": "message_batch_deleted"}},
        },
        "ResultLine": {
            "type": "object",
            "required": ["custom_id", "result"],
            "properties": {
                "custom_id": {"type": "string"},
                "result": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {"type": {"enum": ["succeeded", "errored", "canceled", "expired"]}},
                },
            },
        },
        "MessageParams": {
            "type": "object",
            "description": "Messages API params, validated as the Messages API does (more fields than these)",
            "required": ["model", "max_tokens", "messages"],
            "properties": {
                "model": {"type": "string", "minLength": 1},
                "max_tokens": {"type": "integer", "minimum": 1},
                "messages": _MESSAGES,
                "stream": {"type": "boolean"},
            },
        },
        "CountTokensParams": {
            "type": "object",
            "description": "Messages API params without max_tokens: the fields that make the prompt",
            "required": ["model", "messages"],
            "properties": {
                "model": {"type": "string", "minLength": 1},
                "messages": _MESSAGES,
                "system": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
                "tools": {"type": "array", "items": {"type": "object"}},
            },
        },
        "MessageTokensCount": {
            "type": "object",
            "required": ["input_tokens"],
            "properties": {"input_tokens": {"type": "integer", "minimum": 0}},
        },
        "MessageEvent": {
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": {"enum": list(_EVENTS)},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": {"enum": list(_EVENTS)}},
                    },
                },
            },
        },
        "Error": {
            "type": "object",
            "required": ["type", "error"],
            "properties": {
                "type": {"const": "error"},
                "error": {
                    "type": "object",
                    "required": ["type", "message"],
                    "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
                },
                "request_id": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
        },
        # /v1/files serves OpenAI's Files API too (api/wires.py, docs/openai.md), in its envelope.
        "OpenAIError": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["message", "type", "param", "code"],
                    "properties": {
                        "message": {"type": "string"},
                        "type": {"type": "string"},
                        "param": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                        "code": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                    },
                }
            },
        },
    }
    batch_ok = _ok(_ref("MessageBatch"))
    paths = {
        "/v1/messages/batches": {
            "post": _op(
                "createMessageBatch",
                "Create a message batch",
                {"200": batch_ok},
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CreateRequest")}},
                },
            ),
            "get": _op(
                "listMessageBatches",
                "List message batches, newest first",
                {"200": _ok(_ref("ListPage"))},
                parameters=[
                    {"name": "after_id", "in": "query", "schema": {"type": "string"}},
                    {"name": "before_id", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20},
                    },
                ],
            ),
        },
        "/v1/messages/batches/{message_batch_id}": {
            "get": _op(
                "retrieveMessageBatch", "Retrieve a message batch", {"200": batch_ok}, parameters=[_ID]
            ),
            "delete": _op(
                "deleteMessageBatch",
                "Delete an ended message batch",
                {"200": _ok(_ref("DeletedMessageBatch"))},
                parameters=[_ID],
            ),
        },
        "/v1/messages/batches/{message_batch_id}/cancel": {
            "post": _op("cancelMessageBatch", "Cancel a message batch", {"200": batch_ok}, parameters=[_ID]),
        },
        "/v1/messages/batches/{message_batch_id}/results": {
            "get": _op(
                "getMessageBatchResults",
                "Stream the results of an ended batch as JSONL",
                {"200": _ok(_ref("ResultLine"), "application/x-jsonl")},
                parameters=[_ID],
            ),
        },
    }
    paths["/v1/messages"] = {
        "post": _op(
            "createMessage",
            "Create a message now through the same routes as batches (stream: true answers with SSE)",
            {
                "200": {
                    "description": "The Message, or with `stream: true` its events",
                    "content": {
                        "application/json": {"schema": {"type": "object", "description": "A Message object"}},
                        # OpenAPI 3.1 cannot describe one event of a stream (3.2's itemSchema can):
                        # this schema is each event's, as schemathesis reads it.
                        "text/event-stream": {"schema": _ref("MessageEvent")},
                    },
                }
            },
            requestBody={
                "required": True,
                "content": {"application/json": {"schema": _ref("MessageParams")}},
            },
        )
    }
    paths["/v1/messages/count_tokens"] = {
        "post": _op(
            "countMessageTokens",
            "Count a prompt's input tokens through the route its model takes",
            {"200": _ok(_ref("MessageTokensCount"))},
            requestBody={
                "required": True,
                "content": {"application/json": {"schema": _ref("CountTokensParams")}},
            },
        )
    }
    model = {
        "type": "object",
        "required": ["id", "type"],
        "properties": {"id": {"type": "string"}, "type": {"const": "model"}},
    }
    paths["/v1/models"] = {
        "get": _op(
            "listModels",
            "The models the routing table serves",
            {"200": _ok({"type": "object", "properties": {"data": {"type": "array", "items": model}}})},
        )
    }
    paths["/v1/models/{model_id}"] = {
        "get": _op(
            "retrieveModel",
            "One routed model",
            {"200": _ok(model)},
            parameters=[{"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}],
        )
    }
    paths.update(_files_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "batchd Message Batches API", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                "Error": {"description": "Error", "content": {"application/json": {"schema": _ref("Error")}}},
                "FilesError": {
                    "description": "Error, in Anthropic's envelope or (OpenAI's Files API) OpenAI's",
                    "content": {
                        "application/json": {"schema": {"anyOf": [_ref("Error"), _ref("OpenAIError")]}}
                    },
                },
            },
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"ApiKey": []}, {"Bearer": []}],
    }


def _files_op(op_id: str, summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An operation of /v1/files, whose errors may be in either API's envelope."""
    errors = {code: {"$ref": "#/components/responses/FilesError"} for code in _ERRORS}
    return {"operationId": op_id, "summary": summary, "responses": {**responses, **errors}, **extra}


def _files_paths() -> dict[str, Any]:
    """/v1/files: the files code execution wrote (api/anthropic/files.py). A request without an
    Anthropic header is OpenAI's Files API's (api/openai/files.py, not described here)."""
    file_id = {"name": "file_id", "in": "path", "required": True, "schema": {"type": "string"}}
    metadata = {
        "type": "object",
        "required": ["id", "type", "filename", "mime_type", "size_bytes", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "type": {"const": "file"},
            "filename": {"type": "string"},
            "mime_type": {"type": "string"},
            "size_bytes": {"type": "integer", "minimum": 0},
            "created_at": {"type": "string", "format": "date-time"},
            "downloadable": {"type": "boolean"},
        },
    }
    nullable = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    page = {
        "type": "object",
        "required": ["data", "has_more"],
        "properties": {
            "data": {"type": "array", "items": metadata},
            "has_more": {"type": "boolean"},
            "first_id": nullable,
            "last_id": nullable,
            "next_page": nullable,
        },
    }
    limit = {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20}
    return {
        "/v1/files": {
            "post": _files_op(
                "uploadFile",
                "Upload a file for container_upload (kept until deleted, not downloadable)",
                {"200": _ok(metadata), "415": {"$ref": "#/components/responses/FilesError"}},
                requestBody={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {"file": {"type": "string", "format": "binary"}},
                            }
                        }
                    },
                },
            ),
            "get": _files_op(
                "listFiles",
                "The workspace's files, newest first",
                {"200": _ok(page)},
                parameters=[
                    {"name": "limit", "in": "query", "schema": limit},
                    {"name": "page", "in": "query", "schema": {"type": "string"}},
                    {"name": "after_id", "in": "query", "schema": {"type": "string"}},
                    {"name": "before_id", "in": "query", "schema": {"type": "string"}},
                ],
            ),
        },
        "/v1/files/{file_id}": {
            "get": _files_op(
                "retrieveFileMetadata", "A file's metadata", {"200": _ok(metadata)}, parameters=[file_id]
            ),
            "delete": _files_op(
                "deleteFile",
                "Delete a file",
                {
                    "200": _ok(
                        {
                            "type": "object",
                            "required": ["id", "type"],
                            "properties": {"id": {"type": "string"}, "type": {"const": "file_deleted"}},
                        }
                    )
                },
                parameters=[file_id],
            ),
        },
        "/v1/files/{file_id}/content": {
            "get": _files_op(
                "downloadFile",
                "A file's bytes",
                {"200": {"description": "The file", "content": {"application/octet-stream": {"schema": {}}}}},
                parameters=[file_id],
            )
        },
    }
