"""OpenAI batch lines on the engine: a `batch_…` batch's requests are input-file lines.

A line (`{"custom_id", "method", "url", "body"}`, as the API stored it) routes by `body.model`
through the one routing table and runs as any request does — the route's slots and admission,
fleet slots, the retry policy, the call watchdog, `max_claims` — through the route's backend seen
by its OpenAI endpoints (backends/endpoints/): `Lines.prepare` gives the dispatcher the prepared
params and a route whose backend is a `LineBackend`. `settle` writes the output or error line:

- an answer: `response: {status_code, request_id, body}`, succeeded iff the status is 2xx;
- the upstream's final HTTP error (`UpstreamStatus`): its status and OpenAI error envelope (an
  Anthropic-shaped one converted; another made from its message);
- a line its backend cannot run (`InvalidLine`, `InvalidParams`): status 400 with the envelope
  naming the field as `param`;
- a failure without an HTTP answer: `response: null, error: {code, message}` — `request_timeout`
  (the call timed out), `server_error` (the upstream could not be reached, answered nonsense, or
  no fleet slot came free) or `internal_error` (status 500 without an HTTP answer: abandoned by
  crashed workers, a fault of batchd's).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import orjson

from batchd import exceptions, models, params
from batchd.backends import endpoints
from batchd.backends.base import Backend, InstantAnswer
from batchd.backends.endpoints.base import random_id
from batchd.config import Settings
from batchd.engine.router import Route, Router
from batchd.tools.kit import unwrap

logger = logging.getLogger("batchd.engine")
LINE = "openai_line"  #: the key of the prepared params that holds the parsed line
#: What prepared params show of a line's body: its model (metrics) and its prompt's head (the prefix
#: scheduler, engine/prefix.py, which keys the raw line by the same fields of its body)
PREFIX_FIELDS = ("model", "system", "messages", "tools", "tool_choice")


@dataclasses.dataclass(frozen=True, slots=True)
class Line:
    url: str
    body: dict[str, Any]


def parse(raw: bytes) -> Line:
    """The stored line's endpoint and body; InvalidLine for what the API should have refused."""
    value = params.decode(raw)
    body, url = value.get("body"), value.get("url")
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise exceptions.InvalidLine("body: must be an object with a string model", param="body")
    if url not in endpoints.ENDPOINTS:
        raise exceptions.InvalidLine(f"url: {url!r} is not an endpoint batchd runs", param="url")
    return Line(url, body)


class LineBackend:
    """A route's backend seen through its OpenAI endpoints: the dispatcher calls it as any backend,
    its `params` being `Lines.prepare`'s, its answer the line's `response` object."""

    def __init__(self, inner: Backend, ends: endpoints.Endpoints) -> None:
        self.kind = inner.kind
        self.ends = ends
        call = ends.instant
        self.instant: InstantAnswer | None = None
        if call is not None:

            def instant(params: dict[str, Any], *, attempt: int = 1) -> tuple[dict[str, Any], float]:
                line: Line = params[LINE]
                return call(line.url, line.body, attempt)

            self.instant = instant

    async def create_message(
        self, prepared: dict[str, Any], *, attempt: int = 1, betas: Sequence[str] = ()
    ) -> dict[str, Any]:
        line: Line = prepared[LINE]
        return await self.ends.call(line.url, line.body, attempt=attempt)

    async def count_tokens(self, prepared: dict[str, Any], *, betas: Sequence[str] = ()) -> int:
        raise exceptions.BackendError("OpenAI lines are not counted", status=400)

    async def aclose(self) -> None:
        return None  # the route's backend is closed with the router


class Lines:
    """The dispatcher's view of OpenAI lines: each route once more, with a LineBackend."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._routes: dict[int, Route] = {}

    def prepare(self, req: models.ClaimedRequest, router: Router) -> tuple[dict[str, Any], Route]:
        line = parse(req.params)
        model = line.body["model"]
        route = router.route(model)
        wired = self._routes.get(id(route))
        if wired is None:
            inner = unwrap(route.backend)  # no server tools on this wire
            s = self.settings
            ends = endpoints.for_backend(inner, strict=s.strict, thinking_budget=s.thinking_budget)
            wired = self._routes[id(route)] = dataclasses.replace(route, backend=LineBackend(inner, ends))
        body = line.body
        prepared = {key: body.get(key) for key in PREFIX_FIELDS}
        prepared[LINE] = line
        return prepared, wired


# -- the output and error lines -------------------------------------------------------------------


def settle(req: models.ClaimedRequest, fate: dict[str, Any] | Exception) -> models.Outcome:
    """The outcome of OpenAI line `req`: its `response` object, or the exception it ended with."""
    if isinstance(fate, dict):
        ok = 200 <= int(fate.get("status_code") or 0) < 300
        return _outcome(req, fate, None, ok)
    if isinstance(fate, exceptions.UpstreamStatus):
        return _outcome(req, endpoints.answer(error_body(fate), status=fate.status), None, False)
    if isinstance(fate, exceptions.InvalidParams):
        param = fate.param if isinstance(fate, exceptions.InvalidLine) else None
        body = endpoints.envelope(fate.message, "invalid_request_error", param)
        return _outcome(req, endpoints.answer(body, status=400), None, False)
    if isinstance(fate, exceptions.BackendTimeout):
        return _outcome(req, None, {"code": "request_timeout", "message": fate.message}, False)
    if isinstance(fate, exceptions.BackendError):
        code = "server_error" if fate.status != 500 else "internal_error"
        return _outcome(req, None, {"code": code, "message": fate.message}, False)
    logger.error("request %s/%s failed unexpectedly", req.batch_id, req.custom_id, exc_info=fate)
    return _outcome(req, None, {"code": "internal_error", "message": f"Internal error: {fate}"}, False)


def error_body(exc: exceptions.UpstreamStatus) -> dict[str, Any]:
    """OpenAI's error envelope for an upstream's HTTP error answer."""
    body = exc.body
    if isinstance(body, dict) and body.get("type") != "error" and isinstance(body.get("error"), dict):
        err = body["error"]
        if isinstance(err.get("message"), str):  # OpenAI's own: kept, with all four keys
            filled = {"message": err["message"], "type": exc.error_type, "param": None, "code": None}
            return {**body, "error": {**filled, **err}}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):  # Anthropic's
        err = body["error"]
        message = err.get("message") if isinstance(err.get("message"), str) else exc.message
        return endpoints.envelope(message, str(err.get("type") or exc.error_type))
    return endpoints.envelope(exc.message, exc.error_type)


def _outcome(
    req: models.ClaimedRequest,
    response: dict[str, Any] | None,
    error: dict[str, Any] | None,
    ok: bool,
) -> models.Outcome:
    line = {
        "id": random_id("batch_req_"),  # models.new_batch_request_id's form, made faster
        "custom_id": req.custom_id,
        "response": response,
        "error": error,
    }
    kind = models.ResultType.SUCCEEDED if ok else models.ResultType.ERRORED
    return models.Outcome(
        req.batch_id, req.index, req.custom_id, kind, b"{}", req.key, line=orjson.dumps(line) + b"\n"
    )
