"""`POST /v1/messages/count_tokens` (also `?beta=true`): a prompt's input tokens, through the routes.

The body is validated as `/v1/messages`' is, less `max_tokens` (`params.prepare_count`); the
route's backend counts: the simulator by its token rule, llama.cpp with its own template and
tokenizer, an Anthropic-compatible upstream with its own count_tokens, an OpenAI-compatible one
from the usage of a one-token completion (see `Backend.count_tokens`). A count is a call on its
route: it waits for a slot as a message does.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from batchd import exceptions, params
from batchd.api import errors, responses, services
from batchd.api.anthropic import messages


async def count_tokens(request: Request) -> Response:
    svc = services.of(request)
    settings = svc.settings
    raw = await messages.read_object(request)
    try:
        prepared = params.prepare_count(
            raw, strict=settings.strict, default_thinking_budget=settings.thinking_budget
        )
    except exceptions.InvalidParams as exc:
        raise exceptions.InvalidRequest(exc.message) from None
    route = messages.route_for(svc, prepared["model"])
    try:
        async with route.admit(prepared, realtime=True), asyncio.timeout(settings.request_timeout):
            count = await route.backend.count_tokens(prepared, betas=messages.betas_of(request))
    except TimeoutError:
        timeout = exceptions.BackendTimeout(f"The backend did not count within {settings.request_timeout:g}s")
        return errors.render(timeout, errors.request_id(request))
    except exceptions.InvalidParams as exc:  # a server-tool history the loop cannot read
        raise exceptions.InvalidRequest(exc.message) from None
    except exceptions.BackendError as exc:
        return messages.backend_failure(exc, errors.request_id(request))
    return responses.json({"input_tokens": count}, request)
