"""Model name -> route: the first `[[routes]]` entry whose `model` matches, else the default.

The default is the simulator, or llama.cpp on the `gguf` model when one is given.

Each route owns its backend (one HTTP client per upstream) and slots bounding the calls in flight
to it, which admit realtime calls before batch work (engine/admission.py; never more than its
`fleet_concurrency`, which no one process can exceed); the
dispatcher's global `concurrency` bounds them all together, and on PostgreSQL the store's slots
bound a route's calls across the fleet. With --group-prefixes an engine route's calls are also
admitted to its slots prefix by prefix (engine/prefix.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypedDict

from batchd import exceptions
from batchd.backends.base import Backend, ListsModels
from batchd.config import Settings, routes
from batchd.config.routes import AuthMode, BackendKind, ReasoningMode, RouteConfig
from batchd.engine import adaptive, prefix
from batchd.engine.admission import Slots
from batchd.metrics import Metrics
from batchd.store.base import Store
from batchd.tools import kit
from batchd.tools.kit import ToolKit, unwrap

logger = logging.getLogger("batchd.engine")
MODELS_TTL = 60.0  # seconds an upstream's list of models is reused by GET /v1/models
MODELS_TIMEOUT = 2.0  # seconds an upstream has to list its models


@dataclasses.dataclass
class Route:
    """Where a model's calls go: the backend, the calls in flight it allows, how a call is admitted."""

    backend: Backend
    limit: Slots  #: in-flight calls allowed to this backend (with a scheduler: let through to it)
    config: RouteConfig | None = None  #: None: the default (the simulator, or llama.cpp with --gguf)
    scheduler: prefix.PrefixScheduler | None = None  #: --group-prefixes: admits calls to the engine's slots
    capacity: int = dataclasses.field(init=False)  #: the calls `limit` lets in at once

    def __post_init__(self) -> None:
        self.capacity = self.limit.limit

    @property
    def in_use(self) -> int:
        """Calls this route has let in and not finished (for the dashboard's upstreams page)."""
        return self.limit.limit - self.limit.free

    def admit(
        self, params: dict[str, Any], *, realtime: bool = False
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Waits for this route to take a call with `params`, and holds its place until the call ends.

        Waiting here is not the backend being slow: a caller starts its clock (timeout, latency)
        inside, once admitted. A realtime call (the Messages API) is admitted before any batch
        call waiting (engine/admission.py).
        """
        if self.scheduler is None:
            held = self.limit.hold(realtime=realtime)
        else:
            held = self._scheduled(self.scheduler, params, realtime)
        gate = self.scheduler or self.limit  # where the calls meet the upstream's slots
        if gate.adaptive is None:
            return held
        return adaptive.measured(gate.adaptive, held, gate.pressed, realtime=realtime)

    @property
    def adaptive(self) -> adaptive.AdaptiveLimit | None:
        """The batch calls' limit learnt from the upstream (engine/adaptive.py); None: off."""
        return (self.scheduler or self.limit).adaptive

    @property
    def admits_now(self) -> bool:
        """Whether a call would be admitted at once, without waiting."""
        return self.scheduler is None and not self.limit.locked()

    @contextlib.asynccontextmanager
    async def _scheduled(
        self, scheduler: prefix.PrefixScheduler, params: dict[str, Any], realtime: bool
    ) -> AsyncIterator[None]:
        async with self.limit.hold(realtime=realtime), scheduler.slot(params, realtime=realtime):
            yield


class Router:
    def __init__(self, default: Route, routes: tuple[Route, ...] = (), tools: ToolKit | None = None) -> None:
        self.default = default
        self.routes = routes
        self.tools = tools  #: what the routes' server-tool loops run tools with
        self._cache: dict[str, Route] = {}
        self._models: dict[int, tuple[float, list[str]]] = {}  # id(backend) -> (when, model ids)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        environ: Mapping[str, str] | None = None,
        metrics: Metrics | None = None,
        tools_secret: bytes | None = None,
        store: Store | None = None,
    ) -> Router:
        """Build every route's backend, each but the simulator inside a server-tool loop
        (tools/loop); raises ConfigError for what only shows at start. `tools_secret`: the store's
        key for the server tools' tokens (`tools_secret(store, settings)`); `store`: where
        code-execution containers and their files are kept."""
        from batchd.backends.simulator import SimulatedBackend

        environ = os.environ if environ is None else environ
        check(settings, environ)  # before any client is opened or model loaded
        sim = SimulatedBackend(latency=settings.sim_latency, token_latency=settings.sim_token_latency)
        default = Route(sim, route_slots(settings.concurrency, settings, learns=False))  # nothing to learn
        if settings.gguf:
            from batchd.backends.llamacpp import LlamaCppBackend

            llama = LlamaCppBackend(
                settings.gguf,
                parallel=settings.gguf_parallel,
                ctx=settings.gguf_ctx,
                timeout=settings.request_timeout,
                threads=settings.gguf_threads,
                cache_ram_mib=None if settings.gguf_cache_ram < 0 else settings.gguf_cache_ram,
                template=gguf_template(settings),
                embeddings=settings.gguf_embeddings,
            )
            default = Route(llama, route_slots(settings.gguf_parallel, settings))
        built = []
        for c in settings.routes:
            if c.backend is BackendKind.LLAMACPP:  # the one llama.cpp server: share its slots
                built.append(Route(default.backend, default.limit, c))
            else:
                backend = build_backend(c, settings, environ, sim)
                learns = backend.kind is not BackendKind.SIMULATED
                built.append(Route(backend, route_slots(c.local_limit, settings, learns=learns), c))
        if settings.group_prefixes:  # engine routes admit their calls prefix by prefix
            default, built = schedule_routes(default, built, settings)
        # The loop goes around last: routes sharing a backend (llama.cpp) still share its slots.
        tools = ToolKit(settings, metrics, environ, tools_secret, store)
        default = dataclasses.replace(default, backend=tools.wrap(default.backend))
        built = [
            dataclasses.replace(
                r, backend=tools.wrap(r.backend, r.config.web_search_provider if r.config else "")
            )
            for r in built
        ]
        if metrics is not None:
            learnt = [(r.config.model if r.config else "default", r.adaptive) for r in (*built, default)]
            metrics.watch_routes([(name, limit) for name, limit in learnt if limit is not None])
        return cls(default, tuple(built), tools)

    async def listed_models(self, route: Route) -> list[str]:
        """The upstream's models that reach it through glob `route`, for `GET /v1/models`: an
        `openai` or `anthropic` upstream's own list (kept MODELS_TTL), filtered by the glob and by
        the routes before it; [] for other routes, one that maps every name onto its
        `upstream_model`, or an upstream that does not answer within MODELS_TIMEOUT."""
        config, backend = route.config, unwrap(route.backend)
        if (
            config is None
            or not config.is_glob
            or config.upstream_model
            or backend.kind not in (BackendKind.OPENAI, BackendKind.ANTHROPIC)
            or not isinstance(backend, ListsModels)
        ):
            return []
        now = time.monotonic()
        cached = self._models.get(id(backend))
        if cached is None or now - cached[0] > MODELS_TTL:
            try:
                async with asyncio.timeout(MODELS_TIMEOUT):
                    ids = await backend.model_ids()
            except (TimeoutError, exceptions.BackendError) as exc:
                logger.warning(
                    "routes (%s): the upstream's models could not be listed: %s", config.model, exc
                )
                ids = []
            cached = self._models[id(backend)] = (now, ids)
        return [m for m in cached[1] if self.route(m) is route]

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
            backend = unwrap(route.backend)
            if id(backend) not in closed:
                closed.add(id(backend))
                await backend.aclose()
        if self.tools is not None:
            await self.tools.aclose()


async def tools_secret(store: Store, settings: Settings) -> bytes | None:
    """The key of the server tools' tokens that every process of this store shares: the store's
    secret, made by the first process to ask; None when `server_tools_key` is set (it wins)."""
    if settings.server_tools_key:
        return None
    return await store.server_secret(kit.SECRET_NAME)


def check(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """Refuse at start what the routes need but cannot get: unset keys, a missing --gguf."""
    routes.check(settings.routes, environ)
    for config in settings.routes:
        if config.backend is BackendKind.LLAMACPP and not settings.gguf:
            raise exceptions.ConfigError(
                f"routes ({config.model}): the llamacpp backend needs a model: set gguf (--gguf FILE)"
            )
    gguf_template(settings)
    if settings.gguf_embeddings and not settings.gguf:
        raise exceptions.ConfigError("gguf_embeddings: embeddings are served by the --gguf model: set gguf")
    if settings.gguf:
        if not os.path.isfile(settings.gguf):
            raise exceptions.ConfigError(f"gguf: {settings.gguf} is not a file")
        try:
            importlib.import_module("xllamacpp")
        except ImportError:
            raise exceptions.ConfigError(
                "gguf: running a GGUF model needs the xllamacpp wheel: pip install 'batchd[llamacpp]'"
            ) from None


def gguf_template(settings: Settings) -> str:
    """The chat template of the one llama.cpp server: `gguf_chat_template`, or the one the
    `llamacpp` routes name (they share the server, so they must agree). Raises ConfigError."""
    named = {c.chat_template for c in settings.routes if c.backend is BackendKind.LLAMACPP} - {""}
    if settings.gguf_chat_template:
        named.add(settings.gguf_chat_template)
    if len(named) > 1:
        raise exceptions.ConfigError(
            "routes: the llamacpp routes share one llama.cpp server and so one chat template, but "
            f"{len(named)} are named ({', '.join(sorted(named))}): name one, in gguf_chat_template"
        )
    return named.pop() if named else ""


def route_slots(limit: int, settings: Settings, *, learns: bool = True) -> Slots:
    """A route's slots; with `adaptive_concurrency`, batch work's own limit too (engine/adaptive.py)."""
    learnt = None
    if learns and settings.adaptive_concurrency:
        learnt = adaptive.AdaptiveLimit(
            limit,
            floor=settings.adaptive_min_concurrency,
            tolerance=settings.adaptive_tolerance,
            latency=settings.adaptive_latency,
        )
    return Slots(limit, reserve=settings.realtime_reserve, adaptive=learnt)


def schedule_routes(default: Route, built: list[Route], settings: Settings) -> tuple[Route, list[Route]]:
    """With --group-prefixes, engine routes admit their calls through a PrefixScheduler.

    The scheduler holds the route's slots (its concurrency); the route's semaphore lets
    prefix.WINDOW times as many calls reach it, so that it has a choice of prefixes.
    """
    scheduled: dict[int, tuple[Slots, prefix.PrefixScheduler]] = {}

    def schedule(route: Route) -> Route:
        backend = route.backend
        if backend.kind is BackendKind.SIMULATED:
            return route
        if id(backend) not in scheduled:  # llamacpp routes share the default's server and slots
            if backend.kind is BackendKind.LLAMACPP:
                slots = settings.gguf_parallel
            else:
                assert route.config is not None  # only the default route has none
                slots = route.config.local_limit
            window = Slots(min(prefix.WINDOW * slots, settings.concurrency))
            reserve = settings.realtime_reserve
            scheduler = prefix.PrefixScheduler(slots, reserve=reserve, limit=route.adaptive)
            scheduled[id(backend)] = window, scheduler
        limit, scheduler = scheduled[id(backend)]
        return dataclasses.replace(route, limit=limit, scheduler=scheduler)

    return schedule(default), [schedule(r) for r in built]


class _Upstream(TypedDict):
    upstream_model: str
    api_key: str | None
    headers: dict[str, str]
    concurrency: int
    timeout: float


def build_backend(
    config: RouteConfig, settings: Settings, environ: Mapping[str, str], sim: Backend
) -> Backend:
    if config.backend is BackendKind.SIMULATED:
        return sim
    upstream: _Upstream = {
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
