"""The web dashboard: server-rendered pages over the same Store operations as the API."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def routes() -> list[BaseRoute]:
    from batchd.dashboard import views

    return [
        Route("/", views.index, methods=["GET"]),
        Route("/batches/{batch_id}", views.batch_page, methods=["GET"]),
        Route("/batches/{batch_id}/cancel", views.cancel, methods=["POST"]),
        Route("/batches/{batch_id}/delete", views.delete, methods=["POST"]),
        Route("/login", views.login, methods=["GET", "POST"]),
        Route("/logout", views.logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
