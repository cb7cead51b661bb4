"""Creating batches from the browser: `POST /batches/new` with a requests JSONL file as the body.

The page reads the dropped or picked file in the browser and sends its bytes as they are
(`Content-Type: application/x-ndjson`), with the page's CSRF token in the `x-csrf-token` header.
Not a multipart form: that would need a multipart parser (python-multipart) for one field, and
a form post is what a page elsewhere can send without asking; a header it cannot set without a
CORS preflight, which batchd never grants. Not JSON either: a file inside a JSON string is bigger
and must be escaped. The Origin check (api/guard.py) runs before, as for every POST.

The file is checked by params/jsonl.py, the code behind `batchd submit`, with the same line-numbered
messages, before anything is stored; a file over the server's per-batch limits (`max_requests`,
`max_batch_bytes`) is split as the CLI splits it, into batches created in file order, each under the
workspace's quota as the API's create is (api/quotas.py; a quota that stops a later batch leaves
the earlier ones, and the answer names them). The answer is
JSON: the batches and the page to go to; a bad file is a 400 in the API's error envelope whose
message lists every problem, one per line.
"""

from __future__ import annotations

import asyncio
import re
import time

import orjson
from starlette.requests import Request
from starlette.responses import Response

from batchd import exceptions, models
from batchd.api import bodies, quotas, responses, services
from batchd.api.anthropic import schemas
from batchd.dashboard import sessions, views
from batchd.params import jsonl

CSRF_HEADER = "x-csrf-token"
MAX_BATCHES = 4  # an upload may fill this many batches of max_batch_bytes
OFFLOAD_BYTES = 1024 * 1024  # files at least this large are checked on a thread
_NAME = re.compile(r"[^A-Za-z0-9._ -]")


def file_name(request: Request) -> str:
    """The uploaded file's name, as the messages name it (only its last part, plain characters)."""
    raw = request.query_params.get("name") or "requests.jsonl"
    return _NAME.sub("_", raw.replace("\\", "/").rsplit("/", 1)[-1])[:100] or "requests.jsonl"


async def create(request: Request) -> Response:
    token = request.headers.get(CSRF_HEADER, "")
    if not sessions.csrf_ok(sessions.cookie_id(request), token):
        raise exceptions.PermissionDenied(
            "this upload was not sent by this dashboard, or it is out of date: reload the page and try again"
        )
    workspace = await views.workspace_of(request)
    if workspace is None:
        raise exceptions.AuthenticationFailed("the dashboard needs an API key: log in at /login")
    svc = services.of(request)
    settings = svc.settings
    quota = await quotas.admit(svc, workspace)  # a full workspace is refused before the file is read
    name = file_name(request)
    limit = MAX_BATCHES * settings.max_batch_bytes
    try:
        body = bytes(await bodies.read_body(request, limit))
    except exceptions.RequestTooLarge:
        raise exceptions.RequestTooLarge(
            f"{name}: an upload holds at most {limit} bytes ({MAX_BATCHES} batches of max_batch_bytes); "
            "split the file, or send it with batchd submit"
        ) from None
    try:
        if len(body) < OFFLOAD_BYTES:
            found = jsonl.check_lines(body.split(b"\n"), settings.max_batch_bytes, name=name)
        else:
            found = await asyncio.to_thread(
                jsonl.check_lines, body.split(b"\n"), settings.max_batch_bytes, name=name
            )
    except jsonl.BadInput as exc:
        raise exceptions.InvalidRequest(
            "\n".join([f"{name}: {len(exc.problems)} problem(s); nothing was created", *exc.lines()])
        ) from None
    del body
    created: list[models.Batch] = []
    chunks = list(jsonl.split(found, settings.max_requests, settings.max_batch_bytes))
    try:
        for chunk in chunks:
            params = [orjson.dumps(r["params"]) for r in chunk]
            now = time.time()
            batch = await svc.store.create_batch(
                workspace=workspace,
                custom_ids=[r["custom_id"] for r in chunk],
                params=params,
                now=now,
                expires_at=now + settings.batch_lifetime,
                quota=quota,  # checked in each create's transaction, as the API's create does
            )
            svc.metrics.batch_created(len(chunk), sum(map(len, params)))
            created.append(batch)
    except exceptions.QuotaExceeded as exc:
        if not created:
            raise
        ids = ", ".join(b.id for b in created)
        raise exceptions.QuotaExceeded(
            f"{name}: {len(created)} of {len(chunks)} batches were created ({ids}) before the "
            f"workspace's quota stopped the rest: {exc.message}",
            retry_after=exc.retry_after,
        ) from None
    finally:
        if created and svc.engine is not None:
            svc.engine.wake()
    location = f"/batches/{created[0].id}" if len(created) == 1 else "/"
    answer = {
        "batches": [schemas.batch(b, settings.public_url) for b in created],
        "requests": len(found.items),
        "location": location,
    }
    return responses.json(answer, request)
