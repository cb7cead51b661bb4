"""Which wire a request speaks: Anthropic's or OpenAI's.

/v1/batches and the realtime /v1/chat/completions, /v1/completions and /v1/embeddings are
OpenAI's alone; /v1/files serves both APIs on the same paths. A request that carries
an Anthropic header (`anthropic-version`, `anthropic-beta`, `x-api-key`: every Anthropic SDK sends
the first) or names an Anthropic file id (`file_…`) is Anthropic's; any other (the openai SDK sends
`Authorization: Bearer` and names `file-…` ids) is OpenAI's. Views, and the error renderer, answer
each in its own shape and envelope.
"""

from __future__ import annotations

from starlette.requests import Request

FILES = "/v1/files"
BATCHES = "/v1/batches"
REALTIME = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")  #: OpenAI's alone
ANTHROPIC_HEADERS = ("anthropic-version", "anthropic-beta", "x-api-key")
ANTHROPIC_FILE_PREFIX = "file_"


def is_openai(request: Request) -> bool:
    """Whether the request is one of the OpenAI wire's (its answer and errors in OpenAI's shape)."""
    path: str = request.scope.get("path", "")
    if path == BATCHES or path.startswith(BATCHES + "/") or path in REALTIME:
        return True
    if path == FILES or path.startswith(FILES + "/"):
        return not anthropic_files(request)
    return False


def anthropic_files(request: Request) -> bool:
    """Whether a /v1/files request is Anthropic's Files API's (see the module docstring)."""
    if any(request.headers.get(name) for name in ANTHROPIC_HEADERS):
        return True
    path: str = request.scope.get("path", "")
    return path[len(FILES) + 1 :].startswith(ANTHROPIC_FILE_PREFIX)
