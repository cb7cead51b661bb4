"""The web dashboard: server-rendered pages over the same Store operations as the API."""

from __future__ import annotations

import functools
from pathlib import Path

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def routes() -> list[BaseRoute]:
    from batchd.dashboard import headers, ratelimit, views

    page = [Middleware(headers.SecurityHeaders, headers=headers.PAGE)]
    login = functools.partial(views.login, attempts=ratelimit.Limiter())  # one count per app
    return [
        Route("/", views.index, methods=["GET"], middleware=page),
        Route("/batches/{batch_id}", views.batch_page, methods=["GET"], middleware=page),
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
