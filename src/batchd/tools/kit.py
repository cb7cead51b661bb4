"""`ToolKit`: what every route's loop runs tools with, built once from the settings.

It holds the token key, one instance of each search provider in use (the `[web_search]` provider
and those routes name), the fetcher, the code-execution containers and the metrics; `wrap` puts a
`ToolLoop` around a route's backend. Providers are built when first named, and shared by every
route naming them.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from batchd.backends.base import Backend
from batchd.config import Settings
from batchd.config.routes import BackendKind
from batchd.metrics import Metrics
from batchd.store.base import Store
from batchd.tools import tokens
from batchd.tools.code_execution.containers import Containers
from batchd.tools.code_execution.sandbox import Limits, Sandbox
from batchd.tools.errors import ToolError
from batchd.tools.loop import Fetcher, ToolLoop
from batchd.tools.web_search.base import SearchHit, SearchProvider, SearchQuery
from batchd.tools.web_search.local import LocalProvider

logger = logging.getLogger("batchd.tools")
SECRET_NAME = "server_tools"  #: the store secret that keys batchd's tokens (Store.server_secret)


class Unavailable:
    """A provider that cannot run (not installed, not configured): every search is `unavailable`."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    async def search(self, q: SearchQuery) -> list[SearchHit]:
        raise ToolError("unavailable", self.reason)

    async def health(self) -> str | None:
        return self.reason

    async def aclose(self) -> None:
        pass


class ToolKit:
    """`secret`: the store's `server_secret(SECRET_NAME)`, the token key when `server_tools_key` is
    not set: one key for every process of a fleet. Without either (a kit built with no store), the
    key is a file in the data directory. `store`: where containers and output files are kept
    (code execution is unavailable without one)."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics | None = None,
        environ: Mapping[str, str] | None = None,
        secret: bytes | None = None,
        store: Store | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.environ = os.environ if environ is None else environ
        if settings.server_tools_key:
            self.tokens = tokens.Tokens(tokens.derive_key(settings.server_tools_key))
        elif secret is not None:
            self.tokens = tokens.Tokens(secret)
        else:
            self.tokens = tokens.Tokens(load_key=lambda: tokens.key_from_file(settings.data_dir))
        self.fetcher = _fetcher(settings)
        self.containers = _containers(settings, store, metrics)
        self._providers: dict[str, SearchProvider] = {}
        self._told: set[tuple[str, str]] = set()  # health problems already logged

    def provider(self, name: str = "") -> SearchProvider:
        name = name or self.settings.web_search_provider
        if name not in self._providers:
            self._providers[name] = self._build(name)
        return self._providers[name]

    def wrap(self, backend: Backend, provider: str = "") -> Backend:
        """`backend` running server tools with `provider` ("" : the setting); the simulator as it is."""
        if backend.kind is BackendKind.SIMULATED:
            return backend
        return ToolLoop(
            backend,
            provider=self.provider(provider),
            fetcher=self.fetcher,
            tokens=self.tokens,
            max_iterations=self.settings.tool_max_iterations,
            max_results=self.settings.web_search_max_results,
            metrics=self.metrics,
            containers=self.containers,
        )

    async def health(self) -> dict[str, str | None]:
        """Each provider in use (and web fetch): None when up, else why not (logged once per reason)."""
        found: dict[str, str | None] = {}
        for name, provider in sorted(self._providers.items()):
            try:
                found[f"web_search.{name}"] = await provider.health()
            except Exception as exc:  # a health check must not fail /health
                found[f"web_search.{name}"] = f"health check failed: {exc}"
        found["web_fetch"] = None if self.fetcher is not None else "web fetch is not installed"
        found["code_execution"] = await self.containers.available()
        for name, why in found.items():
            if why is not None and (name, why) not in self._told:
                self._told.add((name, why))
                logger.warning("server tools: %s is down: %s", name, why)
        return found

    async def maintain(self, now: float, *, starting: bool = False) -> None:
        """The engine's maintenance turn: expired containers and files go (at start: the homes a
        crash left behind too, and the sandbox is probed)."""
        if starting:
            await self.containers.available()
        await self.containers.sweep(now, force=starting)

    async def aclose(self) -> None:
        await self.containers.aclose()
        for provider in self._providers.values():
            await provider.aclose()
        closing = getattr(self.fetcher, "aclose", None)
        if closing is not None:
            await closing()

    def _build(self, name: str) -> SearchProvider:
        s = self.settings
        if name == "local":
            return LocalProvider(s.web_search_index)
        try:
            module: Any = importlib.import_module(f"batchd.tools.web_search.{name}")
        except ModuleNotFoundError:
            return Unavailable(name, f"the {name} search provider is not installed")
        if name == "searxng":
            if not s.web_search_searxng_url:
                return Unavailable(name, "searxng: set [web_search] searxng_url")
            provider: SearchProvider = module.SearxngProvider(s.web_search_searxng_url)
        else:
            provider = module.BraveProvider(api_key_env=s.web_search_brave_api_key_env, environ=self.environ)
        return provider


def _fetcher(settings: Settings) -> Fetcher | None:
    """tools/web_fetch's Fetcher built from the settings, or None when it is not installed."""
    try:
        module: Any = importlib.import_module("batchd.tools.web_fetch")
    except ModuleNotFoundError:
        return None
    fetcher: Fetcher = module.Fetcher.from_settings(settings)
    return fetcher


SHARED_CONTAINERS = Path("/var/lib/batchd/containers")  #: where root's containers live by default


def containers_dir(settings: Settings) -> Path:
    """Where containers' homes live: `[code_execution] dir`, else the data directory's containers/
    — but when batchd runs as root, the sandbox runs as another user who must be able to search
    every directory above the homes, and a data directory is often private (under /root, or
    0700 by design): root's default is then /var/lib/batchd/containers/<digest of the data
    directory>, which that user can reach, one directory per data directory."""
    if settings.code_execution_dir:
        return Path(settings.code_execution_dir)
    data = Path(settings.data_dir).resolve()
    if os.geteuid() != 0:
        return data / "containers"
    return SHARED_CONTAINERS / hashlib.sha256(str(data).encode()).hexdigest()[:16]


def _containers(settings: Settings, store: Store | None, metrics: Metrics | None) -> Containers:
    s = settings
    sandbox = None
    if s.code_execution_enabled:
        limits = Limits(
            cpu_seconds=s.code_execution_cpu_seconds,
            wall_seconds=s.code_execution_wall_seconds,
            memory_bytes=s.code_execution_memory,
            processes=s.code_execution_processes,
            open_files=s.code_execution_open_files,
            file_size_bytes=s.code_execution_file_size,
            output_bytes=s.code_execution_output_bytes,
        )
        sandbox = Sandbox(
            root=containers_dir(s),
            bwrap=s.code_execution_bwrap,
            python=s.code_execution_python,
            packages=Path(s.code_execution_packages) if s.code_execution_packages else None,
            limits=limits,
            user=s.code_execution_user if os.geteuid() == 0 else None,  # not root: batchd's own uid
        )
    return Containers(
        sandbox,
        store,
        idle=s.code_execution_container_idle,
        max_running=s.code_execution_max_containers,
        max_output_file=s.code_execution_max_output_file,
        retention=s.retention,
        metrics=metrics,
    )


def unwrap(backend: Backend) -> Backend:
    """The backend a loop wraps (the backend itself when it is not a loop)."""
    return backend.inner if isinstance(backend, ToolLoop) else backend
