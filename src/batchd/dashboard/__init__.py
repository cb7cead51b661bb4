"""The web dashboard: server-rendered pages over the same Store operations as the API."""

from __future__ import annotations

import functools
from pathlib import Path

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def routes() -> list[BaseRoute]:
    from batchd.dashboard import downloads, headers, ratelimit, speed, upload, upstreams, usage, views

    page = [Middleware(headers.SecurityHeaders, headers=headers.PAGE)]
    # What the views keep between requests, one of each per app.
    login = functools.partial(views.login, attempts=ratelimit.Limiter())
    sums, rates = usage.UsageCache(), speed.Speed()
    index = functools.partial(views.index, sums=sums, rates=rates)
    batch_page = functools.partial(views.batch_page, sums=sums, rates=rates)
    upstreams_page = functools.partial(views.upstreams_page, seen=upstreams.Upstreams())
    return [
        Route("/", index, methods=["GET"], middleware=page),
        Route("/new", views.new_batch, methods=["GET"], middleware=page),
        Route("/batches/new", upload.create, methods=["POST"], middleware=page),
        Route("/upstreams", upstreams_page, methods=["GET"], middleware=page),
        Route("/batches/{batch_id}", batch_page, methods=["GET"], middleware=page),
        Route("/batches/{batch_id}/results.jsonl", downloads.results, methods=["GET"], middleware=page),
        Route("/batches/{batch_id}/retry.jsonl", downloads.retry, methods=["GET"], middleware=page),
        Route("/batches/{batch_id}/cancel", views.cancel, methods=["POST"], middleware=page),
        Route("/batches/{batch_id}/delete", views.delete, methods=["POST"], middleware=page),
        Route("/login", login, methods=["GET", "POST"], middleware=page),
        Route("/logout", views.logout, methods=["POST"], middleware=page),
        Mount(
            "/static",
            StaticFiles(directory=STATIC),
            name="static",
            middleware=[Middleware(headers.SecurityHeaders, headers=headers.STATIC)],
        ),
    ]
