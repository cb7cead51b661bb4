"""Model name -> route: the first `[[routes]]` entry whose `model` matches, else the default.

The default is the simulator, or llama.cpp on the `gguf` model when one is given.

Each route owns its backend (one HTTP client per upstream) and a semaphore bounding the calls in
flight to it (never more than its `fleet_concurrency`, which no one process can exceed); the
dispatcher's global `concurrency` bounds them all together, and on PostgreSQL the store's slots
bound a route's calls across the fleet.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any

from batchd import exceptions
from batchd.backends.base import Backend
from batchd.config import Settings, routes
from batchd.config.routes import AuthMode, BackendKind, ReasoningMode, RouteConfig


@dataclasses.dataclass
class Route:
    backend: Backend
    limit: asyncio.Semaphore  #: in-flight calls allowed to this backend
    config: RouteConfig | None = None  #: None: the default (the simulator, or llama.cpp with --gguf)

    @property
    def answer(self) -> Callable[..., tuple[dict[str, Any], float]] | None:
        """The backend's synchronous `answer(params, attempt=)`, when it answers without I/O.

        It returns the Message and the pause due before it (a requested delay), or raises
        BackendError as `create_message` would. The dispatcher calls it in line, without a task.
        """
        if getattr(self.backend, "instant", False):
            answer: Callable[..., tuple[dict[str, Any], float]] = self.backend.answer  # type: ignore[attr-defined]
            return answer
        return None


class Router:
    def __init__(self, default: Route, routes: tuple[Route, ...] = ()) -> None:
        self.default = default
        self.routes = routes
        self._cache: dict[str, Route] = {}

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> Router:
        """Build every route's backend; raises ConfigError for what only shows at start."""
        from batchd.backends.simulator import SimulatedBackend

        environ = os.environ if environ is None else environ
        check(settings, environ)  # before any client is opened or model loaded
        sim = SimulatedBackend(latency=settings.sim_latency, token_latency=settings.sim_token_latency)
        default = Route(sim, asyncio.Semaphore(settings.concurrency))
        if settings.gguf:
            from batchd.backends.llamacpp import LlamaCppBackend

            llama = LlamaCppBackend(
                settings.gguf,
                parallel=settings.gguf_parallel,
                ctx=settings.gguf_ctx,
                timeout=settings.request_timeout,
                threads=settings.gguf_threads,
                cache_ram_mib=None if settings.gguf_cache_ram < 0 else settings.gguf_cache_ram,
            )
            default = Route(llama, asyncio.Semaphore(settings.gguf_parallel))
        built = []
        for c in settings.routes:
            if c.backend is BackendKind.LLAMACPP:  # the one llama.cpp server: share its slots
                built.append(Route(default.backend, default.limit, c))
            else:
                backend = build_backend(c, settings, environ, sim)
                built.append(Route(backend, asyncio.Semaphore(c.local_limit), c))
        if settings.group_prefixes:  # engine routes admit their calls prefix by prefix
            from batchd.engine.prefix import schedule_routes

            default, built = schedule_routes(default, built, settings)
        return cls(default, tuple(built))

    def route(self, model: str) -> Route:
        found = self._cache.get(model)
        if found is None:
            found = next((r for r in self.routes if r.config and r.config.matches(model)), self.default)
            if len(self._cache) < 4096:
                self._cache[model] = found
        return found

    async def aclose(self) -> None:
        closed: set[int] = set()
        for route in (*self.routes, self.default):
            if id(route.backend) not in closed:
                closed.add(id(route.backend))
                await route.backend.aclose()


def check(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """Refuse at start what the routes need but cannot get: unset keys, a missing --gguf."""
    routes.check(settings.routes, environ)
    for config in settings.routes:
        if config.backend is BackendKind.LLAMACPP and not settings.gguf:
            raise exceptions.ConfigError(
                f"routes ({config.model}): the llamacpp backend needs a model: set gguf (--gguf FILE)"
            )
    if settings.gguf:
        if not os.path.isfile(settings.gguf):
            raise exceptions.ConfigError(f"gguf: {settings.gguf} is not a file")
        try:
            import xllamacpp  # noqa: F401
        except ImportError:
            raise exceptions.ConfigError(
                "gguf: running a GGUF model needs the xllamacpp wheel: pip install 'batchd[llamacpp]'"
            ) from None


def build_backend(
    config: RouteConfig, settings: Settings, environ: Mapping[str, str], sim: Backend
) -> Backend:
    if config.backend is BackendKind.SIMULATED:
        return sim
    upstream: dict[str, Any] = {
        "upstream_model": config.upstream_model,
        "api_key": config.api_key(environ),
        "headers": dict(config.headers),
        "concurrency": config.concurrency,
        "timeout": config.timeout or settings.request_timeout,
    }
    if config.backend is BackendKind.ANTHROPIC:
        from batchd.backends.anthropic import AnthropicBackend

        return AnthropicBackend(
            config.base_url,
            auth=config.auth or AuthMode.X_API_KEY,
            betas=config.betas,
            reasoning=config.reasoning or ReasoningMode.NONE,
            **upstream,
        )
    if config.backend is BackendKind.OPENAI:
        from batchd.backends.openai import OpenAIBackend

        return OpenAIBackend(
            config.base_url,
            auth=config.auth or AuthMode.BEARER,
            reasoning=config.reasoning or ReasoningMode.CHAT_TEMPLATE_KWARGS,
            **upstream,
        )
    raise exceptions.ConfigError(f"routes ({config.model}): unknown backend {config.backend!r}")
