"""Model name -> backend. Today every model routes to the built-in simulator."""

from __future__ import annotations

import asyncio
import dataclasses

from batchd.backends.base import Backend
from batchd.config import Settings


@dataclasses.dataclass
class Route:
    backend: Backend
    limit: asyncio.Semaphore  #: in-flight calls allowed to this backend


class Router:
    def __init__(self, default: Route) -> None:
        self.default = default

    @classmethod
    def from_settings(cls, settings: Settings) -> Router:
        from batchd.backends.simulated import SimulatedBackend

        sim = SimulatedBackend(latency=settings.sim_latency, token_latency=settings.sim_token_latency)
        return cls(Route(sim, asyncio.Semaphore(settings.concurrency)))

    def route(self, model: str) -> Route:
        return self.default

    async def aclose(self) -> None:
        await self.default.backend.aclose()
